// Debian's libfcgi-dev (FastCGI developer's kit 2.4): the thread-safe FCGX_* interface.
#include <fcgiapp.h>
