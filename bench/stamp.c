/*
 * Entrypoint of the latency benchmark's containers: the first thing it does is
 * read CLOCK_MONOTONIC and CLOCK_REALTIME, then it writes them to the file
 * named by argv[1] ("<monotonic ns> <realtime ns>\n") and sleeps until killed.
 *
 * The kernel's sched_process_exec tracepoint (which makes the exec record
 * behind containerStarted) fires at the end of execve, right before the
 * program's first instruction: the stamp is the exec to within the program's
 * start-up. Without a C library (x86_64): glibc's start-up costs hundreds of µs
 * on this VM (CPUID probes trapping to the hypervisor). CLOCK_MONOTONIC is the
 * clock of the kernel's ktime and of process.hrtime() in the reading process;
 * containers here have no time namespace.
 *
 *   stamp FILE
 */
#if defined(STAMP_NOLIBC) && defined(__x86_64__)

struct ts {
	long sec;
	long nsec;
};

static long sys3(long n, long a, long b, long c)
{
	long r;

	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}

#define SYS_write	  1
#define SYS_open	  2
#define SYS_close	  3
#define SYS_pause	  34
#define SYS_exit	  60
#define SYS_clock_gettime 228

static int fmt_u64(char *p, unsigned long v)
{
	char tmp[24];
	int n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

__attribute__((used)) void cstart(long *sp)
{
	struct ts mono, real;
	char buf[64];
	char **argv = (char **)(sp + 1);
	int n = 0;
	long fd;

	sys3(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, (long)&mono, 0);
	sys3(SYS_clock_gettime, 0 /* CLOCK_REALTIME */, (long)&real, 0);
	if (sp[0] < 2)
		sys3(SYS_exit, 2, 0, 0);
	n += fmt_u64(buf + n, (unsigned long)mono.sec * 1000000000UL + (unsigned long)mono.nsec);
	buf[n++] = ' ';
	n += fmt_u64(buf + n, (unsigned long)real.sec * 1000000000UL + (unsigned long)real.nsec);
	buf[n++] = '\n';
	fd = sys3(SYS_open, (long)argv[1], 01 | 0100 | 01000 /* O_WRONLY|O_CREAT|O_TRUNC */, 0644);
	if (fd < 0)
		sys3(SYS_exit, 3, 0, 0);
	if (sys3(SYS_write, fd, (long)buf, n) != n)
		sys3(SYS_exit, 4, 0, 0);
	sys3(SYS_close, fd, 0, 0);
	for (;;)
		sys3(SYS_pause, 0, 0, 0);
}

__asm__(".text\n.global _start\n_start:\n\txor %rbp, %rbp\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall cstart\n\thlt\n");

#else
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec mono, real;
	FILE *f;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	if (argc < 2)
		return 2;
	f = fopen(argv[1], "w");
	if (!f)
		return 3;
	fprintf(f, "%llu %llu\n", (unsigned long long)mono.tv_sec * 1000000000ULL + mono.tv_nsec,
		(unsigned long long)real.tv_sec * 1000000000ULL + real.tv_nsec);
	if (fclose(f))
		return 4;
	for (;;)
		pause();
}
#endif
