// SPDX-License-Identifier: MIT OR Apache-2.0
/* usdtkit's recorder: one program attached to every probe being traced. Each hit sends one
 * event through a ring buffer: who hit it (pid, tid, ip), the attach cookie (which probe),
 * the argument count, every argument (value or the error bpf_usdt_arg() returned), and,
 * for the arguments selected in `str_args`, the string the argument points to.
 *
 * Written against libbpf's BPF-side USDT API (usdt.bpf.h): the maps it declares are filled
 * either by libbpf's bpf_program__attach_usdt() or by usdtkit's own attach code, which is
 * how the conformance harness compares the two on the same program. */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
/* One spec per attached site (usdtkit gives every site its own cookie). */
#define BPF_USDT_MAX_SPEC_CNT 65536
#include <bpf/usdt.bpf.h>

/* A kfunc (Linux 6.12+): copies a string from user memory, faulting pages in; sleepable
 * programs only. */
extern int bpf_copy_from_user_str(void *dst, __u32 dst__sz, const void *unsafe_ptr__ign,
				  __u64 flags) __weak __ksym;

#define MAX_ARGS 12
#define MAX_STRS 4
#define STR_LEN 128

struct event {
	__u64 cookie;
	__u64 ip;
	__u32 pid;
	__u32 tid;
	__s32 arg_cnt;
	__u32 str_mask;
	__s64 args[MAX_ARGS];
	__s32 errs[MAX_ARGS];
	char strs[MAX_STRS][STR_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Set before load for benchmarks: read every argument, count the hit, send nothing. */
const volatile bool count_only = false;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hit_count SEC(".maps");

/* user cookie -> bit mask of the argument indexes to read as strings (at most MAX_STRS). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} str_args SEC(".maps");

static __always_inline int record(struct pt_regs *ctx, int sleepable)
{
	struct event *e;
	__u64 cookie = bpf_usdt_cookie(ctx);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 *mask, zero = 0;
	__u64 *count;
	int i, n;

	if (count_only) {
		long v, sum = 0;
		int cnt = bpf_usdt_arg_cnt(ctx);

		for (i = 0; i < MAX_ARGS && i < cnt; i++) {
			bpf_usdt_arg(ctx, i, &v);
			sum += v;
		}
		count = bpf_map_lookup_elem(&hit_count, &zero);
		if (count)
			*count += 1 + (sum & 0);
		return 0;
	}

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->cookie = cookie;
	e->ip = PT_REGS_IP(ctx);
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->arg_cnt = bpf_usdt_arg_cnt(ctx);
	e->str_mask = 0;
	mask = bpf_map_lookup_elem(&str_args, &cookie);
	for (i = 0; i < MAX_STRS; i++)
		e->strs[i][0] = 0;
	n = 0;
	for (i = 0; i < MAX_ARGS; i++) {
		long v = 0;

		if (i < e->arg_cnt) {
			e->errs[i] = bpf_usdt_arg(ctx, i, &v);
		} else {
			e->errs[i] = 0;
		}
		e->args[i] = v;
		if (mask && (*mask & (1u << i)) && e->errs[i] == 0 && n < MAX_STRS) {
			int r = -1;
			char *dst = e->strs[n & (MAX_STRS - 1)];

			if (sleepable && bpf_ksym_exists(bpf_copy_from_user_str))
				r = bpf_copy_from_user_str(dst, STR_LEN, (void *)v, 0);
			else if (!sleepable)
				r = bpf_probe_read_user_str(dst, STR_LEN, (void *)v);
			if (r >= 0)
				e->str_mask |= 1u << i;
			n++;
		}
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* For libbpf's own bpf_program__attach_usdt() (libbpf picks uprobe_multi or perf events). */
SEC("usdt")
int usdtkit_record(struct pt_regs *ctx)
{
	return record(ctx, 0);
}

/* For usdtkit's attach through one uprobe_multi link. */
SEC("uprobe.multi")
int usdtkit_record_multi(struct pt_regs *ctx)
{
	return record(ctx, 0);
}

/* The same, sleepable: strings are copied with faults allowed. */
SEC("uprobe.multi.s")
int usdtkit_record_multi_s(struct pt_regs *ctx)
{
	return record(ctx, 1);
}

/* For usdtkit's attach through one perf-event uprobe per site. */
SEC("uprobe")
int usdtkit_record_perf(struct pt_regs *ctx)
{
	return record(ctx, 0);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
