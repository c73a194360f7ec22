#ifndef CZONEGATEPROBE_H
#define CZONEGATEPROBE_H

/* Glibc's Swift module is not built with _GNU_SOURCE, so setns, unshare and accept4 are not
   imported; and the netlink message macros are function-like. These wrappers exist only for
   that; they can go when Swift's Glibc module exports them. */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/epoll.h>

int czg_setns_net(int fd);
int czg_unshare_net(void);
int czg_accept4_cloexec(int fd);
/* 1 when the link `name` of the calling thread's namespace is running (carrier and an active
   qdisc, set by the kernel's linkwatch up to a second after the link goes up), 0 when not,
   -1 on error. SIOCGIFFLAGS takes a struct ifreq, awkward from Swift. */
int czg_link_running(const char *name);

static inline int czg_netlink_route(void) { return NETLINK_ROUTE; }
static inline unsigned short czg_nlm_request_ack(void) { return NLM_F_REQUEST | NLM_F_ACK; }
static inline unsigned short czg_nlm_create_excl(void) { return NLM_F_CREATE | NLM_F_EXCL; }
static inline unsigned short czg_nlmsg_error(void) { return NLMSG_ERROR; }
static inline unsigned short czg_nlmsg_done(void) { return NLMSG_DONE; }
static inline unsigned short czg_nlm_request_dump(void) { return NLM_F_REQUEST | NLM_F_DUMP; }

#endif
