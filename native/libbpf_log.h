#ifndef CTRWATCH_LIBBPF_LOG_H
#define CTRWATCH_LIBBPF_LOG_H

#include <string>
#include <vector>

struct LibbpfLine {
	std::string level; /* "warn", "info" or "debug" */
	std::string text;
};

/* Collects libbpf's log lines while it lives (load and attach run on the
 * JavaScript thread), so that they can be handed to the JavaScript logger. */
class LibbpfLogCapture
{
      public:
	LibbpfLogCapture();
	~LibbpfLogCapture();
	std::vector<LibbpfLine> Take();
};

#endif
