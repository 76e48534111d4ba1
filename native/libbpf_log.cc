#include "libbpf_log.h"

#include <cstdarg>
#include <cstdio>
#include <bpf/libbpf.h>

static std::vector<LibbpfLine> *g_lines = nullptr;

static int OnLibbpfPrint(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!g_lines)
		return 0;
	/* Sized to the line: a verifier log arrives as one line of many KB, and its
	 * last lines are the reason a load failed. */
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(nullptr, 0, fmt, ap);
	if (n < 0) {
		va_end(again);
		return 0;
	}
	std::string text(static_cast<size_t>(n) + 1, '\0');
	vsnprintf(&text[0], text.size(), fmt, again);
	va_end(again);
	text.resize(static_cast<size_t>(n));
	while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
		text.pop_back();
	if (text.empty())
		return n;
	const char *lv = level == LIBBPF_WARN ? "warn" : level == LIBBPF_INFO ? "info" : "debug";
	/* Debug lines (relocations, the verifier log) come by the thousand: cap
	 * them, but never drop a warning, which is what explains a failure. */
	if (level != LIBBPF_DEBUG || g_lines->size() < 1000)
		g_lines->push_back({ lv, text });
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
