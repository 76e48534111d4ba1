#include "libbpf_log.h"

#include <cstdarg>
#include <cstdio>
#include <bpf/libbpf.h>

static std::vector<LibbpfLine> *g_lines = nullptr;

static int OnLibbpfPrint(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!g_lines)
		return 0;
	char buf[1024];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return 0;
	std::string text(buf);
	while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
		text.pop_back();
	if (text.empty())
		return n;
	const char *lv = level == LIBBPF_WARN ? "warn" : level == LIBBPF_INFO ? "info" : "debug";
	/* Debug lines (relocations, the verifier log) come by the thousand: cap
	 * them, but never drop a warning, which is what explains a failure. */
	if (level != LIBBPF_DEBUG || g_lines->size() < 1000)
		g_lines->push_back({lv, text});
	return n;
}

LibbpfLogCapture::LibbpfLogCapture()
{
	g_lines = new std::vector<LibbpfLine>();
	libbpf_set_print(OnLibbpfPrint);
}

LibbpfLogCapture::~LibbpfLogCapture()
{
	delete g_lines;
	g_lines = nullptr;
}

std::vector<LibbpfLine> LibbpfLogCapture::Take()
{
	std::vector<LibbpfLine> out;
	if (g_lines)
		out.swap(*g_lines);
	return out;
}
