// Debian's libpq (libpq-dev): the PostgreSQL client library, driven non-blockingly from the
// loops by NeedletailPostgres.
#include <libpq-fe.h>
