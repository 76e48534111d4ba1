/*
 * Fork/exec storm: N workers, each looping fork -> child execve(prog) -> waitpid
 * for D seconds. Prints one JSON line:
 *   {"workers":N,"seconds":D,"elapsed_s":..,"execs":..,"execs_per_s":..,
 *    "failed":..,"cpu_user_s":..,"cpu_sys_s":..}
 * cpu_* is the CPU time of every process the storm made (workers and their
 * children), from getrusage(RUSAGE_CHILDREN): BPF programs on the exec path
 * are charged there, as system time.
 *
 * usage: storm [-n workers] [-d seconds] [-p program] [-u [-e]] [-- argv...]
 *   default workers: online CPUs; default program: storm-child beside this binary.
 *   -u: run in a new mount namespace (unshare(CLONE_NEWNS)), so that to ctrwatch
 *       every process of the storm is "in a container" and followed.
 *   -e: with -u, exec this program again once unshared (without -u and -e), as
 *       a container's entry is exec'd after its runtime made its namespaces and
 *       root: the workers then run what was exec'd in that namespace. Without
 *       it the storm is a sandbox that never execs after its unshare.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct result {
	uint64_t execs;
	uint64_t failed;
};

static void worker(int go_fd, int out_fd, double seconds, char **argv)
{
	struct result r = { 0, 0 };
	double deadline;
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Start together: wait for the parent to close the write end. */
	if (read(go_fd, &c, 1) < 0)
		_exit(3);
	deadline = now_s() + seconds;
	while (now_s() < deadline) {
		int status;
		pid_t pid = fork();

		if (pid < 0) {
			r.failed++;
			continue;
		}
		if (pid == 0) {
			execve(argv[0], argv, environ);
			_exit(127);
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			r.execs++;
		else
			r.failed++;
	}
	if (write(out_fd, &r, sizeof(r)) != sizeof(r))
		_exit(4);
	_exit(0);
}

int main(int argc, char **argv)
{
	long workers = sysconf(_SC_NPROCESSORS_ONLN);
	double seconds = 5;
	char prog[PATH_MAX];
	char **child_argv;
	const int entered = getenv("STORM_UNSHARED") != NULL; /* exec'd again by -e */
	int go[2], out[2], opt, unshared = entered, entry = 0;
	struct result total = { 0, 0 };
	struct rusage ru;
	double t0, t1;

	/* storm-child beside this binary */
	ssize_t n = readlink("/proc/self/exe", prog, sizeof(prog) - 32);
	if (n <= 0) {
		perror("readlink");
		return 2;
	}
	prog[n] = 0;
	strcpy(strrchr(prog, '/') + 1, "storm-child");

	while ((opt = getopt(argc, argv, "n:d:p:ue")) != -1) {
		switch (opt) {
		case 'e':
			entry = 1;
			break;
		case 'u':
			if (unshare(CLONE_NEWNS)) {
				perror("unshare(CLONE_NEWNS)");
				return 2;
			}
			unshared = 1;
			break;
		case 'n':
			workers = strtol(optarg, NULL, 10);
			break;
		case 'd':
			seconds = strtod(optarg, NULL);
			break;
		case 'p':
			snprintf(prog, sizeof(prog), "%s", optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-n workers] [-d seconds] [-p program] [-u [-e]] [-- argv...]\n",
				argv[0]);
			return 2;
		}
	}
	if (entry && unshared && !entered) {
		char **again = calloc(argc + 1, sizeof(char *));
		int k = 0;

		for (int i = 0; i < argc; i++)
			if (i >= optind || (strcmp(argv[i], "-u") && strcmp(argv[i], "-e")))
				again[k++] = argv[i];
		setenv("STORM_UNSHARED", "1", 1);
		execv("/proc/self/exe", again);
		perror("execv(/proc/self/exe)");
		return 2;
	}
	if (workers < 1 || seconds <= 0) {
		fprintf(stderr, "storm: workers and seconds must be positive\n");
		return 2;
	}
	/* argv of each exec: the program, then whatever follows the options. */
	child_argv = calloc(argc - optind + 2, sizeof(char *));
	child_argv[0] = prog;
	for (int i = optind; i < argc; i++)
		child_argv[i - optind + 1] = argv[i];
	if (access(prog, X_OK)) {
		fprintf(stderr, "storm: %s: %s\n", prog, strerror(errno));
		return 2;
	}

	if (pipe(go) || pipe(out)) {
		perror("pipe");
		return 2;
	}
	for (long i = 0; i < workers; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			close(go[1]);
			close(out[0]);
			worker(go[0], out[1], seconds, child_argv);
		}
	}
	close(go[0]);
	close(out[1]);
	t0 = now_s();
	close(go[1]); /* go */
	for (long i = 0; i < workers; i++) {
		struct result r;

		if (read(out[0], &r, sizeof(r)) == sizeof(r)) {
			total.execs += r.execs;
			total.failed += r.failed;
		}
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
	t1 = now_s();
	getrusage(RUSAGE_CHILDREN, &ru);
	printf("{\"unshared\":%d,\"entry\":%d,\"workers\":%ld,\"seconds\":%g,\"elapsed_s\":%.6f,"
	       "\"execs\":%llu,\"execs_per_s\":%.1f,\"failed\":%llu,\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f}\n",
	       unshared, entered, workers, seconds, t1 - t0, (unsigned long long)total.execs, total.execs / (t1 - t0),
	       (unsigned long long)total.failed, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	return total.execs ? 0 : 1;
}
