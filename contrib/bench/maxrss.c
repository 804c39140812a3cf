/* maxrss PROG ARGS...: runs PROG, exits with its status, and writes to fd 3
 * the peak RSS in KiB (wait4 ru_maxrss) of PROG and the descendants it
 * reaped. A small static launcher, so the figure is PROG's own and not the
 * RSS of a big parent whose memory a fork or vfork child starts out with. */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  pid_t pid = vfork();
  if (pid < 0) return 2;
  if (pid == 0) {
    execv(argv[1], argv + 1);
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) return 2;
  dprintf(3, "%ld\n", ru.ru_maxrss);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
