// Linux system interfaces that Swift's Glibc module map leaves out. Wrappers are plain
// pass-throughs: no policy lives here.
#ifndef C_NEEDLETAIL_LINUX_H
#define C_NEEDLETAIL_LINUX_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>

/// accept4(2): needs _GNU_SOURCE, which the Glibc module does not define.
int nt_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+, needs _GNU_SOURCE): the child keeps
/// no descriptor from `from` up. Used by tests and tools that spawn servers.
int nt_spawn_closefrom(posix_spawn_file_actions_t *actions, int from);

/// pipe2(fds, O_CLOEXEC) (needs _GNU_SOURCE): a pipe no child spawned meanwhile inherits.
int nt_pipe_cloexec(int fds[2]);

/// pthread_setname_np for the calling thread (needs _GNU_SOURCE): at most 15 bytes show.
int nt_set_thread_name(const char *name);

/// prctl(PR_SET_PDEATHSIG, SIGKILL): the calling process dies with its parent (test tools).
int nt_die_with_parent(void);

/// CPUs in this process's affinity mask (sched_getaffinity), or -1.
int nt_available_cpus(void);

/// futex(2) on a 32-bit word shared by the threads of this process: sleeps while `*word` is
/// `expected` (returns at once otherwise; callers re-check, as wake-ups may be spurious).
int nt_futex_wait(uint32_t *word, uint32_t expected);
/// Wakes every thread sleeping on `word`.
int nt_futex_wake_all(uint32_t *word);
/// Atomic (sequentially consistent) load and increment of such a word.
static inline uint32_t nt_atomic_load_u32(uint32_t *word) { return __atomic_load_n(word, __ATOMIC_SEQ_CST); }
static inline void nt_atomic_increment_u32(uint32_t *word) { __atomic_add_fetch(word, 1, __ATOMIC_SEQ_CST); }

/// sendmsg(2) of `len` bytes with one descriptor (`fd` >= 0) in an SCM_RIGHTS message
/// (`flags`: MSG_DONTWAIT, MSG_NOSIGNAL). Returns sendmsg's result.
long nt_send_with_fd(int sock, const void *bytes, size_t len, int fd, int flags);
/// recvmsg(2) into `bytes`; a descriptor passed with it (received close-on-exec) is stored in
/// `*fd`, else -1. Returns recvmsg's result.
long nt_receive_with_fd(int sock, void *bytes, size_t len, int *fd, int flags);
/// memfd_create(2) with MFD_CLOEXEC.
int nt_memfd(const char *name);

/// Limits and flags as plain integers (some are enums or macros Swift cannot import).
enum {
    NT_IOV_MAX = 1024,
    NT_SOCK_NONBLOCK = 04000,
    NT_SOCK_CLOEXEC = 02000000,
};

static inline uint32_t nt_epollin(void) { return EPOLLIN; }
static inline uint32_t nt_epollout(void) { return EPOLLOUT; }
static inline uint32_t nt_epollerr(void) { return EPOLLERR; }
static inline uint32_t nt_epollhup(void) { return EPOLLHUP; }
static inline uint32_t nt_epollrdhup(void) { return EPOLLRDHUP; }
static inline uint32_t nt_epollexclusive(void) { return EPOLLEXCLUSIVE; }

#endif
