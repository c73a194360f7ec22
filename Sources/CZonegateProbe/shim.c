#define _GNU_SOURCE
#include <sched.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <string.h>
#include <unistd.h>
#include "czonegateprobe.h"

int czg_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }
int czg_unshare_net(void) { return unshare(CLONE_NEWNET); }
int czg_accept4_cloexec(int fd) { return accept4(fd, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK); }

int czg_link_running(const char *name) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    int result = ioctl(fd, SIOCGIFFLAGS, &request);
    close(fd);
    if (result < 0) return -1;
    return (request.ifr_flags & IFF_RUNNING) ? 1 : 0;
}
