#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "contain.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. The
 * command name (field 2) may hold spaces and parentheses: parse after the last ')'. */
static int start_ticks(int pid, unsigned long long *out)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	/* after ") ": state is field 3; starttime is field 22, so skip 19 fields */
	p += 2;
	for (int i = 0; i < 19 && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || sscanf(p, "%llu", out) != 1)
		return -EIO;
	return 0;
}

int cw_kill_process(int pid, uint64_t start_ns)
{
	long hz = sysconf(_SC_CLK_TCK);
	unsigned long long ticks;
	int pidfd, err;

	if (pid <= 1 || hz <= 0)
		return -EINVAL;
	/* Pin the pid first: whatever happens after, the signal goes to this process or nowhere. */
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	err = start_ticks(pid, &ticks);
	if (err == 0 && ticks != start_ns / (1000000000ULL / (unsigned long long)hz))
		err = -ESRCH; /* the pid now names another process */
	if (err == 0 && syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0)
		err = -errno;
	close(pidfd);
	return err;
}
