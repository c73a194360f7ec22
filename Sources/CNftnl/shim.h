#ifndef ZONEGATE_CNFTNL_SHIM_H
#define ZONEGATE_CNFTNL_SHIM_H

/* Order matters: the libnftnl headers use types from the kernel headers. */
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
/* NFLOG: the deny and audit chains log to a group the daemon reads (FlowLogReader). */
#include <linux/netfilter/nfnetlink_log.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <libnftnl/set.h>
#include <libnftnl/rule.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>

/* NFT_REG32_COUNT is an expression macro Swift does not import; tests check
   Register's range against it. */
static inline unsigned int cnftnl_reg32_count(void) { return NFT_REG32_COUNT; }

#endif
