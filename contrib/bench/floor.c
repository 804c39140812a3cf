/* floor: the least work a runtime can do for the bench's one config.
 *
 * NOT a runtime. It makes the same kernel objects brig, crun and runc make for
 * the bench bundle (runc's default config: five new namespaces, a cgroup in
 * every hierarchy with the default device rules, the seven mounts with a
 * read-only bind of each cgroup, six device nodes and six links in /dev,
 * pivot_root, masked and read-only paths, a read-only root, hostname, rlimit,
 * no_new_privs, the three capabilities, lo up) and nothing else: it picks
 * root.path, linux.cgroupsPath and process.args out of config.json with strstr
 * instead of parsing and validating it, keeps a two-line state file, resolves
 * no path inside the rootfs safely, protects nothing of itself, checks next to
 * nothing, and is one static C program. The rest of the config (the mount
 * list, the capabilities, the paths) is compiled in. Its times are about the
 * least any runtime can take to build this container on this machine;
 * contrib/bench/README.md compares the three runtimes with it ("The floor").
 *
 *   floor --root R run [--detach] --bundle B ID
 *   floor --root R create --bundle B [--pid-file F] ID
 *   floor --root R start ID
 *   floor --root R exec ID PROG [ARG...]
 *   floor --root R delete [--force] ID
 *
 * The device rules are the v1 devices cgroup's: on a pure cgroup2 host the
 * floor attaches no device program, which brig does, so there it does less
 * than brig by that much. Co-mounted v1 hierarchies (cpu,cpuacct) get no
 * links in the container.
 *
 * Built by run.sh (gcc -O2 -static) only with --floor.
 *
 * Built with -DFLOOR_SAFE (run.sh --floor builds it too, as "floor-safe") it
 * also does what the project's rules ask of any runtime here, and what brig
 * and crun both do: it is a dynamically linked PIE that loads libc and
 * libmnl (lo comes up through libmnl), every mount target and every node in
 * /dev is resolved inside the rootfs with openat2(RESOLVE_IN_ROOT) and mounted
 * through its fd, and binds are made read-only on a detached tree
 * (open_tree + mount_setattr + move_mount) before they are attached. It still
 * has no self-exe protection and parses no JSON. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#ifdef FLOOR_SAFE
#include <libmnl/libmnl.h>
#include <linux/openat2.h>
#endif
#include <linux/rtnetlink.h>
#include <linux/sched.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define CGROUP_V1_MAGIC 0x27e0eb
#define CGROUP_V2_MAGIC 0x63677270
#define MAX_H 16

static void die(const char *what, const char *arg) {
  fprintf(stderr, "floor: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  exit(1);
}

/* The file at `path`, NUL-terminated, into buf (one read: small files only). */
static void read_text(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t r = fd < 0 ? -1 : read(fd, buf, size - 1);
  if (r <= 0) die("read", path);
  close(fd);
  buf[r] = 0;
}

/* ---- cgroup hierarchies: every cgroup mount directly under /sys/fs/cgroup ---- */

struct hier {
  char name[32];
  char dir[512]; /* the container's directory in this hierarchy */
  int v2;
};
static struct hier H[MAX_H];
static int nh;

static void find_hierarchies(const char *cgpath) {
  struct statfs s;
  if (statfs("/sys/fs/cgroup", &s) == 0 && s.f_type == CGROUP_V2_MAGIC) {
    snprintf(H[0].dir, sizeof H[0].dir, "/sys/fs/cgroup%s", cgpath);
    strcpy(H[0].name, "");
    H[0].v2 = 1;
    nh = 1;
    return;
  }
  DIR *d = opendir("/sys/fs/cgroup");
  if (!d) die("opendir", "/sys/fs/cgroup");
  struct dirent *e;
  while ((e = readdir(d)) && nh < MAX_H) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    char p[300];
    snprintf(p, sizeof p, "/sys/fs/cgroup/%s", e->d_name);
    if (statfs(p, &s) != 0 || (s.f_type != CGROUP_V1_MAGIC && s.f_type != CGROUP_V2_MAGIC)) continue;
    snprintf(H[nh].name, sizeof H[nh].name, "%.31s", e->d_name);
    snprintf(H[nh].dir, sizeof H[nh].dir, "%s%s", p, cgpath);
    H[nh].v2 = s.f_type == CGROUP_V2_MAGIC;
    nh++;
  }
  closedir(d);
}

static void write_file(const char *dir, const char *file, const char *text) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  int fd = open(p, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) < 0) die("write", p);
  close(fd);
}

/* A new v1 cpuset has no cpus or mems: the root's, as every runtime copies them in. */
static void cpuset_fill(const char *dir) {
  static const char *files[] = {"cpuset.cpus", "cpuset.mems"};
  for (int i = 0; i < 2; i++) {
    char p[300], v[256];
    snprintf(p, sizeof p, "/sys/fs/cgroup/cpuset/%s", files[i]);
    read_text(p, v, sizeof v);
    write_file(dir, files[i], v);
  }
}

static const char *device_rules[] = {"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm",
                                     "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm",
                                     "c 5:2 rwm", "c 10:200 rwm"};

static void make_cgroups(void) {
  for (int i = 0; i < nh; i++) {
    int cpuset = strcmp(H[i].name, "cpuset") == 0;
    if (mkdir(H[i].dir, 0755) != 0) {
      if (errno != ENOENT) die("mkdir", H[i].dir);
      char parent[512];
      snprintf(parent, sizeof parent, "%s", H[i].dir);
      *strrchr(parent, '/') = 0;
      if (mkdir(parent, 0755) != 0 && errno != EEXIST) die("mkdir", parent);
      if (cpuset) cpuset_fill(parent);
      if (mkdir(H[i].dir, 0755) != 0) die("mkdir", H[i].dir);
    }
    if (cpuset) cpuset_fill(H[i].dir);
    if (strcmp(H[i].name, "devices") == 0) {
      write_file(H[i].dir, "devices.deny", "a");
      for (size_t k = 0; k < sizeof device_rules / sizeof *device_rules; k++)
        write_file(H[i].dir, "devices.allow", device_rules[k]);
    }
  }
}

static void remove_cgroups(void) {
  for (int i = 0; i < nh; i++)
    for (int tries = 0; rmdir(H[i].dir) != 0 && errno == EBUSY && tries < 1000; tries++)
      usleep(100);
}

/* The joins a new process makes: cloned into the v2 directory, "0" into each v1 tasks file. */
static int v2_fd = -1, v1_fds[MAX_H], nv1;

static void open_joins(void) {
  for (int i = 0; i < nh; i++) {
    char p[600];
    if (H[i].v2) {
      v2_fd = open(H[i].dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (v2_fd < 0) die("open", H[i].dir);
    } else {
      snprintf(p, sizeof p, "%s/tasks", H[i].dir);
      if ((v1_fds[nv1++] = open(p, O_WRONLY | O_CLOEXEC)) < 0) die("open", p);
    }
  }
}

static void join_v1(void) {
  for (int i = 0; i < nv1; i++)
    if (write(v1_fds[i], "0", 1) != 1) die("join", "tasks");
}

static pid_t clone_into(uint64_t flags, int *pidfd) {
  struct clone_args a;
  memset(&a, 0, sizeof a);
  a.flags = flags | CLONE_PIDFD | (v2_fd >= 0 ? CLONE_INTO_CGROUP : 0);
  a.pidfd = (uint64_t)(uintptr_t)pidfd;
  a.exit_signal = SIGCHLD;
  a.cgroup = v2_fd >= 0 ? (uint64_t)v2_fd : 0;
  pid_t pid = syscall(SYS_clone3, &a, sizeof a);
  if (pid < 0) die("clone3", "");
  return pid;
}

/* ---- the process: what runc's default config asks of it ---- */

static char *const env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                            "TERM=xterm", "HOME=/root", NULL};
static const int keep_caps[] = {CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE};

static void process_setup(void) {
  struct rlimit rl = {1024, 1024};
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit", "");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs", "");
  uint64_t keep = 0;
  for (int i = 0; i < 3; i++) keep |= 1ULL << keep_caps[i];
  for (int c = 0; c <= 63; c++) {
    if (keep & (1ULL << c)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      die("capbset_drop", "");
    }
  }
  /* process.user 0:0 with no additionalGids: the caller's groups go. */
  if (setgroups(0, NULL) != 0 || setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) die("user", "0:0");
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2] = {{(uint32_t)keep, (uint32_t)keep, 0}, {0, 0, 0}};
  if (syscall(SYS_capset, &h, d) != 0) die("capset", "");
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  umask(022); /* init set 0 for the device nodes; the process gets the usual mask */
  if (chdir("/") != 0) die("chdir", "/");
}

/* ---- the init: root filesystem ---- */

#ifndef FLOOR_SAFE
static void mnt(const char *src, const char *dst, const char *type, unsigned long flags,
                const char *data) {
  if (mount(src, dst, type, flags, data) != 0) die("mount", dst);
}

static void bind_ro(const char *src, const char *dst, unsigned long extra) {
  mnt(src, dst, NULL, MS_BIND | MS_REC, NULL);
  mnt(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | extra, NULL);
}

static void rootfs_setup(const char *rootfs) {
  mnt(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL);
  mnt(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL);
  if (chdir(rootfs) != 0) die("chdir", rootfs);
  const char *dirs[] = {"proc", "dev", "sys"};
  for (int i = 0; i < 3; i++)
    if (mkdir(dirs[i], 0755) != 0 && errno != EEXIST) die("mkdir", dirs[i]);
  const unsigned long nse = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  mnt("proc", "proc", "proc", 0, NULL);
  mnt("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  mkdir("dev/pts", 0755);
  mnt("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
      "newinstance,ptmxmode=0666,mode=0620,gid=5");
  mkdir("dev/shm", 0755);
  mnt("shm", "dev/shm", "tmpfs", nse, "mode=1777,size=65536k");
  mkdir("dev/mqueue", 0755);
  mnt("mqueue", "dev/mqueue", "mqueue", nse, NULL);
  mnt("sysfs", "sys", "sysfs", nse | MS_RDONLY, NULL);
  if (nh == 1 && H[0].v2) {
    /* A pure cgroup2 host: the container's directory itself, read-only. */
    bind_ro(H[0].dir, "sys/fs/cgroup", nse);
  } else {
    /* v1 or hybrid: a tmpfs holding one read-only bind per v1 hierarchy. */
    mnt("tmpfs", "sys/fs/cgroup", "tmpfs", nse, "mode=755");
    for (int i = 0; i < nh; i++) {
      if (H[i].v2) continue; /* a hybrid host's cgroup2: not bound, as brig does */
      char p[300];
      snprintf(p, sizeof p, "sys/fs/cgroup/%.31s", H[i].name);
      if (mkdir(p, 0755) != 0) die("mkdir", p);
      bind_ro(H[i].dir, p, nse);
    }
    mnt(NULL, "sys/fs/cgroup", NULL, MS_REMOUNT | MS_RDONLY | nse, "mode=755");
  }
  static const struct { const char *name; unsigned maj, min; } nodes[] = {
      {"dev/null", 1, 3}, {"dev/zero", 1, 5}, {"dev/full", 1, 7},
      {"dev/random", 1, 8}, {"dev/urandom", 1, 9}, {"dev/tty", 5, 0}};
  for (int i = 0; i < 6; i++)
    if (mknod(nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) != 0)
      die("mknod", nodes[i].name);
  static const char *links[][2] = {{"/proc/self/fd", "dev/fd"},     {"/proc/self/fd/0", "dev/stdin"},
                                   {"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
                                   {"/proc/kcore", "dev/core"},     {"pts/ptmx", "dev/ptmx"}};
  for (int i = 0; i < 6; i++)
    if (symlink(links[i][0], links[i][1]) != 0) die("symlink", links[i][1]);
  if (syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root", rootfs);
  mnt(NULL, ".", NULL, MS_REC | MS_SLAVE, NULL);
  if (umount2(".", MNT_DETACH) != 0) die("umount", "old root");
  if (chdir("/") != 0) die("chdir", "/");
  static const char *masked[] = {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                 "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                 "/proc/sched_debug", "/sys/firmware", "/proc/scsi"};
  for (int i = 0; i < 10; i++) {
    struct stat st;
    if (stat(masked[i], &st) != 0) continue;
    if (S_ISDIR(st.st_mode))
      mnt("tmpfs", masked[i], "tmpfs", MS_RDONLY, NULL);
    else
      mnt("/dev/null", masked[i], NULL, MS_BIND, NULL);
  }
  static const char *ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
  for (int i = 0; i < 5; i++) {
    if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) != 0) {
      if (errno == ENOENT) continue;
      die("mount", ro[i]);
    }
    mnt(NULL, ro[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC, NULL);
  }
  mnt(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
  if (sethostname("runc", 4) != 0) die("sethostname", "");
}

#else /* FLOOR_SAFE: every target resolved inside the root, mounted through its fd */

static int root_fd = -1;

/* `rel` inside the root, as an O_PATH fd; made (a directory) when missing and
 * `make` is set; -1 with errno otherwise. */
static int resolve(const char *rel, int make) {
  struct open_how how = {.flags = O_PATH | O_CLOEXEC | O_NOFOLLOW,
                         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
  if (fd >= 0 || errno != ENOENT || !make) return fd;
  char parent[300];
  snprintf(parent, sizeof parent, "%s", rel);
  char *slash = strrchr(parent, '/');
  const char *base = rel;
  int pfd = root_fd;
  if (slash) {
    *slash = 0;
    base = slash + 1;
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    if ((pfd = syscall(SYS_openat2, root_fd, parent, &how, sizeof how)) < 0) return -1;
  }
  if (mkdirat(pfd, base, 0755) != 0 && errno != EEXIST) return -1;
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  fd = syscall(SYS_openat2, pfd, base, &how, sizeof how);
  if (pfd != root_fd) close(pfd);
  return fd;
}

static void mnt(const char *src, const char *rel, const char *type, unsigned long flags,
                const char *data) {
  int fd = resolve(rel, 1);
  if (fd < 0) die("resolve", rel);
  char p[64];
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  if (mount(src, p, type, flags, data) != 0) die("mount", rel);
  close(fd);
}

/* A read-only copy of the tree at (dfd, path) attached on `target`. */
static void bind_ro_fd(int dfd, const char *path, int target, unsigned int attrs, const char *what) {
  int tree = open_tree(dfd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE |
                                      (path[0] ? 0 : AT_EMPTY_PATH));
  if (tree < 0) die("open_tree", what);
  struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY | attrs};
  if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) != 0)
    die("mount_setattr", what);
  if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
    die("move_mount", what);
  close(tree);
}

static void rootfs_setup(const char *rootfs) {
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) die("mount", "/");
  if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) != 0) die("mount", rootfs);
  if (chdir(rootfs) != 0) die("chdir", rootfs);
  if ((root_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) die("open", rootfs);
  const unsigned long nse = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  const unsigned int nse_attr = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
  mnt("proc", "proc", "proc", 0, NULL);
  mnt("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  mnt("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
      "newinstance,ptmxmode=0666,mode=0620,gid=5");
  mnt("shm", "dev/shm", "tmpfs", nse, "mode=1777,size=65536k");
  mnt("mqueue", "dev/mqueue", "mqueue", nse, NULL);
  mnt("sysfs", "sys", "sysfs", nse | MS_RDONLY, NULL);
  if (nh == 1 && H[0].v2) {
    int t = resolve("sys/fs/cgroup", 1);
    if (t < 0) die("resolve", "sys/fs/cgroup");
    bind_ro_fd(AT_FDCWD, H[0].dir, t, nse_attr, H[0].dir);
    close(t);
  } else {
    mnt("tmpfs", "sys/fs/cgroup", "tmpfs", nse, "mode=755");
    for (int i = 0; i < nh; i++) {
      if (H[i].v2) continue;
      char p[300];
      snprintf(p, sizeof p, "sys/fs/cgroup/%.31s", H[i].name);
      int t = resolve(p, 1);
      if (t < 0) die("resolve", p);
      bind_ro_fd(AT_FDCWD, H[i].dir, t, nse_attr, H[i].dir);
      close(t);
    }
    mnt(NULL, "sys/fs/cgroup", NULL, MS_REMOUNT | MS_RDONLY | nse, "mode=755");
  }
  int dev = resolve("dev", 0);
  if (dev < 0) die("resolve", "dev");
  static const struct { const char *name; unsigned maj, min; } nodes[] = {
      {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (int i = 0; i < 6; i++)
    if (mknodat(dev, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) != 0)
      die("mknod", nodes[i].name);
  static const char *links[][2] = {{"/proc/self/fd", "fd"},     {"/proc/self/fd/0", "stdin"},
                                   {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
                                   {"/proc/kcore", "core"},     {"pts/ptmx", "ptmx"}};
  for (int i = 0; i < 6; i++)
    if (symlinkat(links[i][0], dev, links[i][1]) != 0) die("symlink", links[i][1]);
  close(dev);
  if (syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root", rootfs);
  if (mount(NULL, ".", NULL, MS_REC | MS_SLAVE, NULL) != 0) die("mount", "old root");
  if (umount2(".", MNT_DETACH) != 0) die("umount", "old root");
  if (chdir("/") != 0) die("chdir", "/");
  close(root_fd);
  if ((root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) die("open", "/");
  static const char *masked[] = {"proc/acpi", "proc/asound", "proc/kcore", "proc/keys",
                                 "proc/latency_stats", "proc/timer_list", "proc/timer_stats",
                                 "proc/sched_debug", "sys/firmware", "proc/scsi"};
  for (int i = 0; i < 10; i++) {
    int fd = resolve(masked[i], 0);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      die("resolve", masked[i]);
    }
    struct stat st;
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    if (fstat(fd, &st) != 0) die("fstat", masked[i]);
    if (S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL)
                            : mount("/dev/null", p, NULL, MS_BIND, NULL))
      die("mount", masked[i]);
    close(fd);
  }
  static const char *ro[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"};
  for (int i = 0; i < 5; i++) {
    int fd = resolve(ro[i], 0);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      die("resolve", ro[i]);
    }
    bind_ro_fd(fd, "", fd, 0, ro[i]);
    close(fd);
  }
  close(root_fd);
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) die("mount", "/ ro");
  if (sethostname("runc", 4) != 0) die("sethostname", "");
}
#endif /* FLOOR_SAFE */

/* ---- lo up in the container's network namespace, from the parent ---- */

static void lo_up(int pidfd) {
  int own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (own < 0 || setns(pidfd, CLONE_NEWNET) != 0) die("setns", "net");
#ifdef FLOOR_SAFE
  struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) != 0) die("netlink", "socket");
  char mb[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nh_ = mnl_nlmsg_put_header(mb);
  nh_->nlmsg_type = RTM_NEWLINK;
  nh_->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nh_->nlmsg_seq = 1;
  struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nh_, sizeof *ifi);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = 1;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  if (mnl_socket_sendto(nl, nh_, nh_->nlmsg_len) < 0) die("send", "RTM_NEWLINK");
  ssize_t got = mnl_socket_recvfrom(nl, mb, sizeof mb);
  if (got < 0 || mnl_cb_run(mb, got, 1, mnl_socket_get_portid(nl), NULL, NULL) < 0) die("lo", "up");
  mnl_socket_close(nl);
#else
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) die("socket", "netlink");
  struct {
    struct nlmsghdr n;
    struct ifinfomsg i;
  } req;
  memset(&req, 0, sizeof req);
  req.n.nlmsg_len = sizeof req;
  req.n.nlmsg_type = RTM_NEWLINK;
  req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.i.ifi_family = AF_UNSPEC;
  req.i.ifi_index = 1;
  req.i.ifi_flags = IFF_UP;
  req.i.ifi_change = IFF_UP;
  if (send(s, &req, sizeof req, 0) < 0) die("send", "RTM_NEWLINK");
  char buf[512];
  if (recv(s, buf, sizeof buf, 0) < 0) die("recv", "RTM_NEWLINK");
  struct nlmsgerr *err = NLMSG_DATA((struct nlmsghdr *)buf);
  if (err->error) {
    errno = -err->error;
    die("lo", "up");
  }
  close(s);
#endif
  if (setns(own, CLONE_NEWNET) != 0) die("setns", "back");
  close(own);
}

/* ---- state: R/ID/{state,exec.fifo} ---- */

static char state_dir[512];

static void read_state(pid_t *pid, char *cgpath, size_t n) {
  char p[600], buf[600];
  snprintf(p, sizeof p, "%s/state", state_dir);
  read_text(p, buf, sizeof buf);
  *pid = atoi(buf);
  char *nl = strchr(buf, '\n');
  snprintf(cgpath, n, "%.*s", (int)strcspn(nl + 1, "\n"), nl + 1);
}

/* config.json: process.args, root.path and linux.cgroupsPath, the fields the bench varies. */
static void config_strings(const char *bundle, char *rootfs, size_t rn, char *cgpath, size_t cn,
                           char **args, int nargs) {
  char p[600];
  static char buf[65536];
  snprintf(p, sizeof p, "%s/config.json", bundle);
  read_text(p, buf, sizeof buf);
  const char *keys[] = {"\"root\"", "\"cgroupsPath\""};
  char *out[] = {rootfs, cgpath};
  size_t outn[] = {rn, cn};
  for (int k = 0; k < 2; k++) {
    char *q = strstr(buf, keys[k]);
    if (q && k == 0) q = strstr(q, "\"path\"");
    if (q) q = strchr(q + strlen(k == 0 ? "\"path\"" : keys[k]), '"');
    if (!q) {
      fprintf(stderr, "floor: %s: no %s\n", p, keys[k]);
      exit(1);
    }
    q++;
    snprintf(out[k], outn[k], "%.*s", (int)strcspn(q, "\""), q);
  }
  /* "args": ["a", "b"]: split in place (no escapes in the bench's arguments). */
  char *q = strstr(buf, "\"args\"");
  char *end = q ? strchr(q, ']') : NULL;
  int n = 0;
  if (q) q = strchr(q, '[');
  while (q && end && n < nargs - 1 && (q = strchr(q + 1, '"')) && q < end) {
    args[n++] = q + 1;
    q = strchr(q + 1, '"');
    *q = 0;
  }
  if (n == 0) {
    fprintf(stderr, "floor: %s: no process.args\n", p);
    exit(1);
  }
  args[n] = NULL;
}

/* ---- commands ---- */

static int cmd_run(const char *bundle, int detach, int create, const char *pidfile) {
  char rootfs[512], cgpath[512], p[600], *args[16];
  config_strings(bundle, rootfs, sizeof rootfs, cgpath, sizeof cgpath, args, 16);
  if (mkdir(state_dir, 0711) != 0) die("mkdir", state_dir);
  int fifo = -1;
  if (create) {
    snprintf(p, sizeof p, "%s/exec.fifo", state_dir);
    if (mkfifo(p, 0622) != 0) die("mkfifo", p);
    if ((fifo = open(p, O_PATH | O_CLOEXEC)) < 0) die("open", p);
  }
  find_hierarchies(cgpath);
  make_cgroups();
  open_joins();
  /* ready: init to the parent (a byte once set up, for create; EOF at its
   * execve). go: the parent to init once lo is up, for run (create's start
   * comes after create has returned). */
  int ready[2], go[2];
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) die("pipe", "");
  int pidfd;
  pid_t pid = clone_into(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET, &pidfd);
  if (pid == 0) {
    umask(0); /* the device nodes' 0666, as every runtime makes them */
    close(ready[0]);
    close(go[1]);
    join_v1();
    rootfs_setup(rootfs);
    process_setup();
    if (create) {
      char f[64];
      if (write(ready[1], "R", 1) != 1) _exit(1);
      snprintf(f, sizeof f, "/proc/self/fd/%d", fifo);
      int w = open(f, O_WRONLY | O_CLOEXEC);
      if (w < 0 || write(w, "0", 1) != 1) die("open", "exec.fifo");
      close(w);
    } else {
      char c;
      if (read(go[0], &c, 1) != 1) _exit(1);
    }
    execve(args[0], args, env);
    die("execve", args[0]);
  }
  close(ready[1]);
  close(go[0]);
  lo_up(pidfd);
  if (!create && write(go[1], "G", 1) != 1) die("write", "go");
  snprintf(p, sizeof p, "%s/state", state_dir);
  FILE *f = fopen(p, "we");
  if (!f) die("open", p);
  fprintf(f, "%d\n%s\n", pid, cgpath);
  fclose(f);
  if (create || detach) {
    char c;
    ssize_t r;
    while ((r = read(ready[0], &c, 1)) < 0 && errno == EINTR) {}
    if (create && r != 1) { errno = EIO; die("init", "died"); }
    if (pidfile) {
      FILE *pf = fopen(pidfile, "we");
      if (!pf) die("open", pidfile);
      fprintf(pf, "%d", pid);
      fclose(pf);
    }
    return 0;
  }
  int status;
  if (waitpid(pid, &status, 0) < 0) die("waitpid", "");
  remove_cgroups();
  unlink(p);
  rmdir(state_dir);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cmd_start(void) {
  char p[600], c;
  snprintf(p, sizeof p, "%s/exec.fifo", state_dir);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, &c, 1) != 1) die("start", p);
  close(fd);
  unlink(p);
  return 0;
}

static int cmd_exec(char **argv) {
  pid_t pid;
  char cgpath[512];
  read_state(&pid, cgpath, sizeof cgpath);
  find_hierarchies(cgpath);
  open_joins();
  int target = syscall(SYS_pidfd_open, pid, 0);
  if (target < 0) die("pidfd_open", "");
  if (setns(target, CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS) != 0)
    die("setns", "");
  int pidfd;
  pid_t child = clone_into(0, &pidfd);
  if (child == 0) {
    join_v1();
    process_setup();
    execve(argv[0], argv, env);
    die("execve", argv[0]);
  }
  int status;
  if (waitpid(child, &status, 0) < 0) die("waitpid", "");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cmd_delete(int force) {
  pid_t pid;
  char cgpath[512], p[600];
  read_state(&pid, cgpath, sizeof cgpath);
  if (force) {
    int fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
      syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
      struct pollfd pf = {fd, POLLIN, 0};
      poll(&pf, 1, 5000);
      close(fd);
    }
  }
  find_hierarchies(cgpath);
  remove_cgroups();
  snprintf(p, sizeof p, "%s/state", state_dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/exec.fifo", state_dir);
  unlink(p);
  if (rmdir(state_dir) != 0) die("rmdir", state_dir);
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: floor --root R run|create|start|exec|delete ... (see floor.c)\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 5 || strcmp(argv[1], "--root") != 0) usage();
  const char *root = argv[2], *cmd = argv[3];
  const char *bundle = NULL, *pidfile = NULL;
  int detach = 0, force = 0, i = 4;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "--bundle") && i + 1 < argc) bundle = argv[++i];
    else if (!strcmp(argv[i], "--pid-file") && i + 1 < argc) pidfile = argv[++i];
    else if (!strcmp(argv[i], "--detach")) detach = 1;
    else if (!strcmp(argv[i], "--force")) force = 1;
    else usage();
  }
  if (i >= argc) usage();
  if (mkdir(root, 0700) != 0 && errno != EEXIST) die("mkdir", root);
  snprintf(state_dir, sizeof state_dir, "%s/%s", root, argv[i]);
  if (!strcmp(cmd, "run") && bundle) return cmd_run(bundle, detach, 0, NULL);
  if (!strcmp(cmd, "create") && bundle) return cmd_run(bundle, 0, 1, pidfile);
  if (!strcmp(cmd, "start")) return cmd_start();
  if (!strcmp(cmd, "exec") && i + 1 < argc) return cmd_exec(argv + i + 1);
  if (!strcmp(cmd, "delete")) return cmd_delete(force);
  usage();
}
