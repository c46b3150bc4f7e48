// SPDX-License-Identifier: GPL-2.0
//
// berth-watch's kernel side (issue 22): process execs, opens for write and outbound connects of
// the cgroups user space watches (and of the cgroups below them), written to one ring buffer;
// connects and unconnected UDP sends checked against a per-cgroup allow-list when enforcement
// is on.
//
// Built by scripts/build-bpf (Debian's clang, -target bpf, CO-RE). The few kernel structs the
// programs read are declared below with preserve_access_index, so their field offsets are
// relocated against the running kernel's BTF at load time (no generated vmlinux.h).
// overlayfs' struct ovl_inode is the exception: it lives in a module on most distribution
// kernels, where CO-RE (against vmlinux) cannot see it; the loader reads its layout. The
// helpers are declared by number (include/uapi/linux/bpf.h), so no libbpf headers are needed.
//
// The event layouts are a contract with crates/watch/src/probe/wire.rs: change both together.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
#define CORE __attribute__((preserve_access_index))

// ---- map definitions (BTF-defined maps, as libbpf's bpf_helpers.h writes them) ----
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_MAP_TYPE_RINGBUF 27
#define BPF_ANY 0
#define BPF_F_NO_PREALLOC 1

// ---- helpers, by number ----
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static __u64 (*bpf_get_current_uid_gid)(void) = (void *)15;
static __u64 (*bpf_get_current_cgroup_id)(void) = (void *)80;
static __u64 (*bpf_get_current_ancestor_cgroup_id)(int level) = (void *)123;
static long (*bpf_probe_read_user)(void *dst, __u32 size, const void *src) = (void *)112;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static long (*bpf_probe_read_user_str)(void *dst, __u32 size, const void *src) = (void *)114;
static long (*bpf_probe_read_kernel_str)(void *dst, __u32 size, const void *src) = (void *)115;
static __u64 (*bpf_ktime_get_boot_ns)(void) = (void *)125;
static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) = (void *)132;
static void (*bpf_ringbuf_discard)(void *data, __u64 flags) = (void *)133;

// ---- the kernel structs read, only the fields used (CO-RE relocated) ----
struct super_block {
	__u32 s_dev;
	unsigned long s_magic;
} CORE;

struct inode {
	unsigned long i_ino;
	struct super_block *i_sb;
} CORE;

struct dentry;

// Where overlayfs' struct ovl_inode keeps its vfs_inode and __upperdentry: set by the loader
// from the kernel's BTF (vmlinux's, or the overlay module's when overlayfs is a module, which
// CO-RE cannot relocate against). 0 and 0: no overlayfs on this kernel.
const volatile __u32 ovl_vfs_inode_offset = 0;
const volatile __u32 ovl_upperdentry_offset = 0;
// 1: also report the execs and connects of cgroups neither watched nor ignored (see `ignored`).
const volatile __u32 report_unwatched = 0;

struct file {
	struct inode *f_inode;
} CORE;

struct linux_binprm {
	struct file *file;
	const char *filename;
	const char *interp;
} CORE;

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} CORE;

struct ns_common {
	unsigned int inum;
} CORE;

struct mnt_namespace {
	struct ns_common ns;
} CORE;

struct nsproxy {
	struct mnt_namespace *mnt_ns;
} CORE;

struct pid {
	unsigned int level;
} CORE;

struct task_struct {
	__s32 tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct nsproxy *nsproxy;
	struct pid *thread_pid;
} CORE;

// include/uapi/linux/openat2.h (read from user memory, a stable layout)
struct open_how {
	__u64 flags;
};

// The context of a syscalls:sys_enter_* tracepoint (its format file: 8 bytes of common fields,
// the syscall number, then the arguments, each 8 bytes).
struct syscall_enter {
	__u64 common;
	__s64 id;
	__u64 args[6];
};

// include/uapi/linux/bpf.h: the context of cgroup/connect4 and connect6 (a uapi struct: its
// layout is stable, no relocation).
struct bpf_sock_addr {
	__u32 user_family;
	__u32 user_ip4;
	__u32 user_ip6[4];
	__u32 user_port;
	__u32 family;
	__u32 type;
	__u32 protocol;
	__u32 msg_src_ip4;
	__u32 msg_src_ip6[4];
};

#define OVERLAYFS_SUPER_MAGIC 0x794c7630UL
#define AF_INET 2
#define AF_INET6 10
#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000
#define WRITE_FLAGS (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)

// ---- the wire format ----
#define KIND_EXEC 1
#define KIND_OPEN_WRITE 2
#define KIND_CONNECT 3
#define KIND_BIND 4

#define FILENAME_MAX_LEN 256
#define ARGS_MAX_LEN 1024
#define PATH_MAX_LEN 256
#define ALLOW_MAX 32

#define ORIGIN_NOT_OVERLAY 0
#define ORIGIN_LOWER 1
#define ORIGIN_UPPER 2

#define EXEC_ARGS_TRUNCATED 1
#define EXEC_FILENAME_TRUNCATED 2
#define EXEC_INTERPRETED 4

// 32 bytes, at the start of every event.
struct header {
	__u32 kind;
	__u32 pid;
	__u32 uid;
	__u32 ppid;
	__u64 cgroup_id;
	__u64 boot_ns;
};

struct exec_event {
	struct header h;
	__u64 ino;
	__u32 dev;		// the kernel's dev_t (major << 20 | minor)
	__u32 origin;
	__u32 flags;		// EXEC_*
	__u32 args_len;		// bytes of args[] filled (NUL-separated strings)
	__u64 args_size;	// arg_end - arg_start: the whole argument block's size
	__u32 mnt_ns;		// the mount namespace's inode number (0: unknown)
	__u32 pid_ns_level;	// how deep the task's pid namespace is (0: the initial one)
	char filename[FILENAME_MAX_LEN];
	char args[ARGS_MAX_LEN];
};

struct open_event {
	struct header h;
	__u32 flags;
	__s32 path_len;		// bpf_probe_read_user_str's result: < 0 when the path was unreadable
	char path[PATH_MAX_LEN];
};

// a connect, or (KIND_BIND) a bind(2) to a port: the address and port bound
struct connect_event {
	struct header h;
	__u16 family;
	__u16 port;		// host byte order
	__u32 type;		// SOCK_STREAM 1, SOCK_DGRAM 2
	__u32 blocked;
	__u32 pad;
	__u8 addr[16];		// network byte order; the first 4 bytes for AF_INET
};

// One allowed destination: the address under `mask` (both network byte order, the first word
// only for AF_INET), and a port (0: any).
struct allow {
	__u16 family;
	__u16 port;
	__u32 pad;
	__u32 addr[4];
	__u32 mask[4];
};

struct policy {
	__u32 enforce;
	__u32 count;
	struct allow allow[ALLOW_MAX];
};

// the sizes crates/watch/src/probe/wire.rs decodes
_Static_assert(sizeof(struct header) == 32, "header");
_Static_assert(sizeof(struct exec_event) == 1352, "exec_event");
_Static_assert(sizeof(struct open_event) == 296, "open_event");
_Static_assert(sizeof(struct connect_event) == 64, "connect_event");
_Static_assert(sizeof(struct policy) == 8 + ALLOW_MAX * 40, "policy");

// ---- maps ----
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// cgroup id → 1: the cgroups whose events are reported.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} watched SEC(".maps");

// cgroup id → 1: cgroups user space found are no container it watches. With
// report_unwatched, the execs and connects of every other cgroup are reported, so that a
// container's first ones, made before user space has found and watched it, reach it: it holds
// them until it knows whose they are (a connect then is reported, not blocked). LRU: cgroup ids are never reused, an evicted one costs one more
// event.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} ignored SEC(".maps");

// pid_tgid → an open for write whose path (or openat2's flags) could not be read at the
// syscall's entry; LRU, so a thread that never returns from its open cannot fill it.
struct pending_open {
	__u64 path;
	__u64 how;
	__u64 cgroup_id;
	__u64 boot_ns;
	__u32 flags;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct pending_open);
} pending_opens SEC(".maps");

// How many opens wait in pending_opens: the exits of every open on the machine look here
// first (an array lookup the verifier inlines) instead of in the hash. Not exact under LRU
// eviction (then the exits look in the hash for nothing), never zero with an entry waiting.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pending_count SEC(".maps");

// cgroup id → its connect policy.
// Allocated as entries are added (a policy is 1,288 bytes: preallocated, 16,384 of them would
// pin 21 MiB of kernel memory); only cgroup programs use it, where that is allowed.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct policy);
} policies SEC(".maps");

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&drops, &zero);
	if (n)
		*n += 1;
}

// How deep under the cgroup2 root a watched cgroup may be and still cover its descendants.
#define MAX_CGROUP_LEVEL 32

// The id of the cgroup in `map` that the current task is in or under (0: none). A container
// may make cgroups of its own below the one it was given (systemd inside, or any process with
// write access to its cgroupfs): its processes there are still the container's, reported
// under and checked against the container's cgroup (the nearest one in `map`, when cgroups
// in it are nested). The task's own cgroup is looked up first (where nearly every container
// process is); its ancestors only when that misses, from the root down to the task's level.
static __always_inline __u64 cgroup_in(void *map)
{
	__u64 id = bpf_get_current_cgroup_id();
	if (bpf_map_lookup_elem(map, &id))
		return id;
	__u64 nearest = 0;
	for (int level = 1; level < MAX_CGROUP_LEVEL; level++) {
		__u64 a = bpf_get_current_ancestor_cgroup_id(level);
		// 0: past the task's own level; its own id: that level, looked up already
		if (a == 0 || a == id)
			break;
		if (bpf_map_lookup_elem(map, &a))
			nearest = a;
	}
	return nearest;
}

static __always_inline void fill_header(struct header *h, __u32 kind, __u64 cgroup_id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	h->kind = kind;
	h->pid = pid_tgid >> 32;
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->ppid = 0;
	h->cgroup_id = cgroup_id;
	h->boot_ns = bpf_ktime_get_boot_ns();
}

// tp_btf/sched_process_exec: (struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm),
// after the new program's mm is in place.
SEC("tp_btf/sched_process_exec")
int handle_exec(__u64 *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[2];
	__u64 cgroup_id = cgroup_in(&watched);
	if (!cgroup_id) {
		if (!report_unwatched)
			return 0;
		cgroup_id = bpf_get_current_cgroup_id();
		if (bpf_map_lookup_elem(&ignored, &cgroup_id))
			return 0;
	}

	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop();
		return 0;
	}
	fill_header(&e->h, KIND_EXEC, cgroup_id);
	e->h.ppid = task->real_parent->tgid;
	e->flags = 0;

	long n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), bprm->filename);
	if (n < 0)
		e->filename[0] = 0;
	else if (n == sizeof(e->filename))
		e->flags |= EXEC_FILENAME_TRUNCATED;

	unsigned long start = task->mm->arg_start;
	unsigned long end = task->mm->arg_end;
	__u64 size = end > start ? end - start : 0;
	__u32 len = size > ARGS_MAX_LEN ? ARGS_MAX_LEN : (__u32)size;
	e->args_size = size;
	if (size > ARGS_MAX_LEN)
		e->flags |= EXEC_ARGS_TRUNCATED;
	if (len > ARGS_MAX_LEN)
		len = ARGS_MAX_LEN;
	if (bpf_probe_read_user(e->args, len, (const void *)start) < 0)
		len = 0;
	e->args_len = len;
	// the namespaces the program runs in: a runtime setting a container up (runc's re-exec
	// of itself from a memfd) is in the cgroup before it is in the container's namespaces
	e->mnt_ns = task->nsproxy ? task->nsproxy->mnt_ns->ns.inum : 0;
	e->pid_ns_level = task->thread_pid ? task->thread_pid->level : 0;

	// A script (binfmt_script) or a binfmt_misc format: the kernel replaced bprm->file by the
	// interpreter's and pointed bprm->interp at a copy of its path (bprm_change_interp);
	// otherwise interp is filename, the same pointer. The script's own file is closed by now.
	if (bprm->interp != bprm->filename)
		e->flags |= EXEC_INTERPRETED;

	struct inode *inode = bprm->file->f_inode;
	struct super_block *sb = inode->i_sb;
	e->ino = inode->i_ino;
	e->dev = sb->s_dev;
	e->origin = ORIGIN_NOT_OVERLAY;
	if (sb->s_magic == OVERLAYFS_SUPER_MAGIC && ovl_upperdentry_offset != 0) {
		// container_of(inode, struct ovl_inode, vfs_inode)->__upperdentry
		const char *oi = (const char *)inode - ovl_vfs_inode_offset;
		struct dentry *upper = 0;
		bpf_probe_read_kernel(&upper, sizeof(upper), oi + ovl_upperdentry_offset);
		e->origin = upper ? ORIGIN_UPPER : ORIGIN_LOWER;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

// Report an open; -1 (and nothing reported) when the path cannot be read and `must` is 0.
static __always_inline int emit_open(__u64 cgroup_id, __u64 boot_ns, const char *path,
				     __u32 flags, int must)
{
	struct open_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop();
		return 0;
	}
	fill_header(&e->h, KIND_OPEN_WRITE, cgroup_id);
	e->h.boot_ns = boot_ns;
	e->flags = flags;
	e->path_len = bpf_probe_read_user_str(e->path, sizeof(e->path), path);
	if (e->path_len < 0) {
		if (!must) {
			bpf_ringbuf_discard(e, 0);
			return -1;
		}
		e->path[0] = 0;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

// At the syscall's entry the path may be in a page not yet faulted in (a string in a new
// program's read-only data: bash's "/dev/tty"), and a tracepoint cannot fault it in: then the
// open is kept here and reported at the syscall's exit, when the kernel has copied the path
// (so the page is in). openat2's flags are in user memory too: always read at the exit.
static __always_inline int report_open(const char *path, __u64 flags, const void *how)
{
	if (!how && !(flags & WRITE_FLAGS))
		return 0;
	__u64 cgroup_id = cgroup_in(&watched);
	if (!cgroup_id)
		return 0;
	__u64 boot_ns = bpf_ktime_get_boot_ns();
	if (!how && emit_open(cgroup_id, boot_ns, path, (__u32)flags, 0) == 0)
		return 0;
	struct pending_open po = {
		.path = (__u64)path,
		.how = (__u64)how,
		.cgroup_id = cgroup_id,
		.boot_ns = boot_ns,
		.flags = (__u32)flags,
	};
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&pending_count, &zero);
	if (!count)
		return 0;
	__sync_fetch_and_add(count, 1);
	if (bpf_map_update_elem(&pending_opens, &id, &po, BPF_ANY) != 0) {
		__sync_fetch_and_add(count, -1);
		count_drop();
	}
	return 0;
}

// sys_exit_{openat,openat2,open,creat}: report the open kept at the entry, if any
SEC("tracepoint/syscalls/sys_exit_openat")
int handle_open_exit(void *ctx)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&pending_count, &zero);
	if (!count || *count == 0)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct pending_open *found = bpf_map_lookup_elem(&pending_opens, &id);
	if (!found)
		return 0;
	struct pending_open po = *found;
	if (bpf_map_delete_elem(&pending_opens, &id) == 0)
		__sync_fetch_and_add(count, -1);
	__u32 flags = po.flags;
	if (po.how) {
		struct open_how how = {};
		if (bpf_probe_read_user(&how, sizeof(how), (const void *)po.how) < 0)
			return 0; // the call failed with EFAULT: nothing was opened
		flags = (__u32)how.flags;
		if (!(flags & WRITE_FLAGS))
			return 0;
	}
	// still unreadable: the path pointer itself is bad (the open failed with EFAULT); reported
	// with an empty path all the same
	emit_open(po.cgroup_id, po.boot_ns, (const char *)po.path, flags, 1);
	return 0;
}

// openat(int dfd, const char *filename, int flags, umode_t mode)
SEC("tracepoint/syscalls/sys_enter_openat")
int handle_openat(struct syscall_enter *ctx)
{
	return report_open((const char *)ctx->args[1], (__u32)ctx->args[2], 0);
}

// openat2(int dfd, const char *filename, struct open_how *how, size_t usize)
SEC("tracepoint/syscalls/sys_enter_openat2")
int handle_openat2(struct syscall_enter *ctx)
{
	return report_open((const char *)ctx->args[1], 0, (const void *)ctx->args[2]);
}

// creat(const char *pathname, umode_t mode): open(O_CREAT | O_WRONLY | O_TRUNC), for the
// programs that make the syscall themselves (glibc's creat() calls openat); not on every
// architecture
SEC("tracepoint/syscalls/sys_enter_creat")
int handle_creat(struct syscall_enter *ctx)
{
	return report_open((const char *)ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC, 0);
}

// open(const char *filename, int flags, umode_t mode): not on every architecture
SEC("tracepoint/syscalls/sys_enter_open")
int handle_open(struct syscall_enter *ctx)
{
	return report_open((const char *)ctx->args[0], (__u32)ctx->args[1], 0);
}

static __always_inline int allowed(struct policy *p, __u16 family, const __u32 *addr, __u16 port)
{
	for (int i = 0; i < ALLOW_MAX; i++) {
		if (i >= p->count)
			break;
		struct allow *a = &p->allow[i];
		if (a->family != family)
			continue;
		if (a->port != 0 && a->port != port)
			continue;
		if ((addr[0] & a->mask[0]) != a->addr[0])
			continue;
		if (family == AF_INET6 &&
		    ((addr[1] & a->mask[1]) != a->addr[1] ||
		     (addr[2] & a->mask[2]) != a->addr[2] ||
		     (addr[3] & a->mask[3]) != a->addr[3]))
			continue;
		return 1;
	}
	return 0;
}

// The address of a cgroup/connect, sendmsg or bind program's context: network byte order,
// the first word only for AF_INET (`family` is a constant where this is inlined, so a
// program reads only its own family's fields, as the verifier requires).
static __always_inline void sock_addr(struct bpf_sock_addr *ctx, __u16 family, __u32 *addr)
{
	if (family == AF_INET) {
		addr[0] = ctx->user_ip4;
	} else {
		addr[0] = ctx->user_ip6[0];
		addr[1] = ctx->user_ip6[1];
		addr[2] = ctx->user_ip6[2];
		addr[3] = ctx->user_ip6[3];
	}
}

// The cgroup a socket event of the current task is reported under: its watched one, else
// (with report_unwatched) its own unless user space ignores it; 0: not reported.
static __always_inline __u64 reported_cgroup(void)
{
	__u64 cgroup_id = cgroup_in(&watched);
	if (!cgroup_id && report_unwatched) {
		cgroup_id = bpf_get_current_cgroup_id();
		if (bpf_map_lookup_elem(&ignored, &cgroup_id))
			cgroup_id = 0;
	}
	return cgroup_id;
}

// A connect (KIND_CONNECT) or bind (KIND_BIND) event, or a drop counted when the ring
// buffer is full.
static __always_inline void submit_sock_event(__u32 kind, __u64 cgroup_id,
					      struct bpf_sock_addr *ctx, __u16 family,
					      __u16 port, const __u32 *addr, __u32 blocked)
{
	struct connect_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop();
		return;
	}
	fill_header(&e->h, kind, cgroup_id);
	e->family = family;
	e->port = port;
	e->type = ctx->type;
	e->blocked = blocked;
	e->pad = 0;
	__builtin_memcpy(e->addr, addr, sizeof(e->addr));
	bpf_ringbuf_submit(e, 0);
}

// A connect (report_allowed) or an unconnected UDP sendmsg (only a refusal is reported: every
// datagram would be an event otherwise), checked against the cgroup's policy.
static __always_inline int check_destination(struct bpf_sock_addr *ctx, __u16 family,
					     int report_allowed)
{
	__u64 policy_id = cgroup_in(&policies);
	struct policy *p = policy_id ? bpf_map_lookup_elem(&policies, &policy_id) : 0;
	if (!report_allowed && !(p && p->enforce))
		return 1;

	__u32 addr[4] = {};
	__u16 port = __builtin_bswap16((__u16)ctx->user_port);
	sock_addr(ctx, family, addr);

	int blocked = 0;
	if (p && p->enforce) {
		int ok = allowed(p, family, addr, port);
		// an IPv4-mapped IPv6 destination (::ffff:a.b.c.d) also matches IPv4 entries
		if (!ok && family == AF_INET6 && addr[0] == 0 && addr[1] == 0 &&
		    addr[2] == __builtin_bswap32(0xffff)) {
			__u32 v4[4] = {addr[3], 0, 0, 0};
			ok = allowed(p, AF_INET, v4, port);
		}
		blocked = !ok;
	}

	// a refused sendmsg is reported for a watched cgroup only; a connect as any event
	__u64 cgroup_id = report_allowed ? reported_cgroup() : (blocked ? cgroup_in(&watched) : 0);
	if (cgroup_id)
		submit_sock_event(KIND_CONNECT, cgroup_id, ctx, family, port, addr, blocked);
	// 0: the call fails with EPERM
	return blocked ? 0 : 1;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	return check_destination(ctx, AF_INET, 1);
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	return check_destination(ctx, AF_INET6, 1);
}

// sendto/sendmsg with a destination on an unconnected UDP socket: without these, a datagram
// could go where the policy refuses a connect
SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
	return check_destination(ctx, AF_INET, 0);
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
	return check_destination(ctx, AF_INET6, 0);
}

// bind(2) to a port (0, an ephemeral port a client asks for, is not reported) by a watched
// container's process (or, with report_unwatched, one of a cgroup not yet known): reported,
// never refused here (whether the image declares the port is user space's decision).
static __always_inline int report_bind(struct bpf_sock_addr *ctx, __u16 family)
{
	__u16 port = __builtin_bswap16((__u16)ctx->user_port);
	if (port == 0)
		return 1;
	__u64 cgroup_id = reported_cgroup();
	if (!cgroup_id)
		return 1;
	__u32 addr[4] = {};
	sock_addr(ctx, family, addr);
	submit_sock_event(KIND_BIND, cgroup_id, ctx, family, port, addr, 0);
	return 1;
}

SEC("cgroup/bind4")
int bind4(struct bpf_sock_addr *ctx)
{
	return report_bind(ctx, AF_INET);
}

SEC("cgroup/bind6")
int bind6(struct bpf_sock_addr *ctx)
{
	return report_bind(ctx, AF_INET6);
}

char LICENSE[] SEC("license") = "GPL";
