// SPDX-License-Identifier: MIT OR Apache-2.0
/* usdtkit's recorder: one program attached to every probe being traced.
 *
 * In event mode each hit sends one variable-length record through the ring buffer: a
 * header (who hit it, the attach cookie naming the site, the argument count), one 8-byte
 * slot per argument the site has (the value, or -errno with the argument's bit set in
 * err_mask), then one slot per string asked for (struct str_hdr and str_len bytes). A hit
 * whose record does not fit is counted in stats[STAT_LOST]: the reader reports losses, it
 * never guesses them.
 *
 * In count mode nothing is sent: hits are counted per (site, pid) in `counts`.
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
/* Bounds the verifier can see; the real capacity is str_len, set before load. */
#define MAX_STR_LEN 4096

enum mode { MODE_EVENTS = 0, MODE_COUNT = 1, MODE_BENCH = 2 };
enum stat { STAT_HITS = 0, STAT_LOST = 1, STAT_COUNT_FULL = 2, STAT_NR = 3 };

struct event_hdr {
	__u64 cookie;
	__u64 ip;
	__u32 pid;
	__u32 tid;
	__s32 arg_cnt;
	__u16 err_mask;
	__u8 nvals;
	__u8 nstrs;
};

/* Flags of a string slot. */
#define STR_CUT 1	/* the string goes on past str_len - 1 bytes */
#define STR_FAILED 2	/* len holds the read's -errno */

struct str_hdr {
	__u8 arg;
	__u8 flags;
	__u16 pad;
	__s32 len;	/* bytes kept, without the NUL; or -errno */
};

struct count_key {
	__u64 cookie;
	__u32 pid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Set before load. */
const volatile __u32 mode = MODE_EVENTS;
/* Capacity of each string slot, with its NUL: a multiple of 8, at most MAX_STR_LEN. */
const volatile __u32 str_len = 256;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_NR);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct count_key);
	__type(value, __u64);
} counts SEC(".maps");

/* user cookie -> bit mask of the argument indexes to read as strings. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} str_args SEC(".maps");

static __always_inline __u32 popcount12(__u32 x)
{
	x = x - ((x >> 1) & 0x555);
	x = (x & 0x333) + ((x >> 2) & 0x333);
	x = (x + (x >> 4)) & 0x0f0f;
	return (x + (x >> 8)) & 0x1f;
}

static __always_inline void stat_add(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		*v += 1;
}

static __always_inline void count_hit(__u64 cookie, __u32 pid)
{
	struct count_key k = { .cookie = cookie, .pid = pid };
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&counts, &k);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&counts, &k, &one, BPF_NOEXIST) == 0)
		return;
	/* Another CPU inserted it first, or the map is full. */
	v = bpf_map_lookup_elem(&counts, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		stat_add(STAT_COUNT_FULL);
}

/* Reads the string at `src` into the slot at `off` of the record. */
static __always_inline void read_str(struct bpf_dynptr *rec, __u32 off, int arg, long src,
				     int sleepable)
{
	struct str_hdr *h = bpf_dynptr_data(rec, off, sizeof(*h));
	char *dst;
	long r = -1;
	char next = 0;

	if (!h)
		return;
	h->arg = arg;
	h->flags = 0;
	h->pad = 0;
	dst = bpf_dynptr_data(rec, off + sizeof(*h), str_len);
	if (!dst) {
		h->flags = STR_FAILED;
		h->len = -22;
		return;
	}
	if (sleepable && bpf_ksym_exists(bpf_copy_from_user_str))
		r = bpf_copy_from_user_str(dst, str_len, (void *)src, 0);
	else if (sleepable)
		r = -95;
	else
		r = bpf_probe_read_user_str(dst, str_len, (void *)src);
	if (r < 0) {
		h->flags = STR_FAILED;
		h->len = r;
		return;
	}
	h->len = r > 0 ? r - 1 : 0;
	/* The slot is full: one more byte says whether the string was cut. */
	if (r == str_len) {
		if (sleepable)
			bpf_copy_from_user(&next, 1, (void *)(src + r - 1));
		else
			bpf_probe_read_user(&next, 1, (void *)(src + r - 1));
		if (next)
			h->flags = STR_CUT;
	}
}

static __always_inline int record(struct pt_regs *ctx, int sleepable)
{
	struct bpf_dynptr rec;
	struct event_hdr *h;
	__u64 cookie = bpf_usdt_cookie(ctx);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__s64 vals[MAX_ARGS] = {};
	__u16 err_mask = 0;
	__u32 *maskp, mask = 0, size, base, slot, nstrs, len;
	int i, k, cnt, nvals;

	stat_add(STAT_HITS);
	if (mode == MODE_COUNT) {
		count_hit(cookie, pid_tgid >> 32);
		return 0;
	}
	cnt = bpf_usdt_arg_cnt(ctx);
	nvals = cnt < 0 ? 0 : (cnt > MAX_ARGS ? MAX_ARGS : cnt);
	/* Unrolled, and the error folded in without a branch: a branch that leaves a
	 * different state behind on each argument gives the verifier a path per subset. */
#pragma unroll
	for (i = 0; i < MAX_ARGS; i++) {
		long v = 0;
		__s64 failed;
		int err;

		if (i < nvals) {
			err = bpf_usdt_arg(ctx, i, &v);
			failed = -(__s64)((__u32)err >> 31);	/* all ones when err < 0 */
			err_mask |= (__u16)(((__u32)err >> 31) << i);
			vals[i] = (v & ~failed) | ((__s64)err & failed);
		}
	}
	if (mode == MODE_BENCH)
		return 0;
	maskp = bpf_map_lookup_elem(&str_args, &cookie);
	if (maskp)
		mask = *maskp & ~err_mask & ((1u << nvals) - 1);
	/* Counted without branches: a branch per argument here would give the verifier a
	 * path per subset of arguments. */
	nstrs = popcount12(mask);
	slot = sizeof(struct str_hdr) + (str_len > MAX_STR_LEN ? MAX_STR_LEN : str_len);
	size = sizeof(*h) + nvals * 8 + nstrs * slot;
	if (bpf_ringbuf_reserve_dynptr(&events, size, 0, &rec)) {
		bpf_ringbuf_discard_dynptr(&rec, 0);
		stat_add(STAT_LOST);
		return 0;
	}
	h = bpf_dynptr_data(&rec, 0, sizeof(*h));
	if (!h) {
		bpf_ringbuf_discard_dynptr(&rec, 0);
		stat_add(STAT_LOST);
		return 0;
	}
	h->cookie = cookie;
	h->ip = PT_REGS_IP(ctx);
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->arg_cnt = cnt;
	h->err_mask = err_mask;
	h->nvals = nvals;
	h->nstrs = nstrs;
	len = nvals * 8;
	barrier_var(len);
	if (len > MAX_ARGS * 8)
		len = MAX_ARGS * 8;
	if (len)
		bpf_dynptr_write(&rec, sizeof(*h), vals, len, 0);
	base = sizeof(*h) + nvals * 8;
	/* The selected arguments in order, lowest set bit first, without a branch on each
	 * bit: a branch per argument would give the verifier a path per subset. */
	for (k = 0; k < MAX_ARGS; k++) {
		if (k >= nstrs)
			break;
		long src = 0;

		i = popcount12((mask & -mask) - 1);
		mask &= mask - 1;
		/* The pointer is taken back from the record: indexing `vals` by i would make
		 * the verifier track i, hence mask and err_mask, exactly. */
		if (bpf_dynptr_read(&src, sizeof(src), &rec, sizeof(*h) + i * 8, 0))
			src = 0;	/* the slot then says the read failed (EFAULT) */
		read_str(&rec, base + k * slot, i, src, sleepable);
	}
	bpf_ringbuf_submit_dynptr(&rec, 0);
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
