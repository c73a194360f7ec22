#define _GNU_SOURCE
#include <sched.h>
#include <sys/socket.h>
#include "czonegateprobe.h"

int czg_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }
int czg_unshare_net(void) { return unshare(CLONE_NEWNET); }
int czg_accept4_cloexec(int fd) { return accept4(fd, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK); }
