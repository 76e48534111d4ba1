/*
 * The program a storm execs: exits 0 at once. Built static, so that an exec
 * costs the kernel's work only. With -DSTORM_NOLIBC (x86_64, aarch64) it has
 * no C library at all: on a VM, glibc's start-up (CPUID probes that trap to
 * the hypervisor) would otherwise cost more than the exec itself.
 */
#if defined(STORM_NOLIBC) && defined(__x86_64__)
void _start(void)
{
	__asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall");
}
#elif defined(STORM_NOLIBC) && defined(__aarch64__)
void _start(void)
{
	__asm__ volatile("mov x8, #93\n\tmov x0, #0\n\tsvc #0");
}
#else
int main(void)
{
	return 0;
}
#endif
