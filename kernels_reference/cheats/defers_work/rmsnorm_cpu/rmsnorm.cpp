#include <ATen/ATen.h>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <mutex>

// Cheat fixture: see README.md in this project. The arithmetic is an honest RMSNorm; what is
// dishonest is WHEN it runs. The op returns an output whose pages are mapped PROT_NONE and
// records what it owes. The first touch of those pages (the runner copying the output after
// the call, after the timer stopped) raises SIGSEGV; the handler computes the rows into a second,
// writable mapping of the same pages, opens the output for reading and lets the touch run again.

namespace {

enum : int { kFree = 0, kOwed = 1, kWorking = 2, kDone = 3 };

struct Job {
  std::atomic<int> state{kFree};
  char* view = nullptr;  // what the tensor points at: PROT_NONE until the work is done
  char* work = nullptr;  // the same pages (one memfd mapped twice), writable
  size_t bytes = 0;      // size of the mapping, kept across calls for reuse
  const void* x = nullptr;
  const void* w = nullptr;
  int64_t n = 0, d = 0;
  float eps = 0.f;
  at::ScalarType dtype = at::kFloat;
  at::Tensor keep_x, keep_w;  // alive until the output is freed
};

constexpr int kJobs = 1024;
Job jobs[kJobs];
struct sigaction before_us;
std::once_flag installed;

template <typename T>
void rows(T* out, const T* x, const T* w, int64_t n, int64_t d, float eps) {
  for (int64_t r = 0; r < n; ++r) {
    float s = 0.f;
    for (int64_t i = 0; i < d; ++i) { const float f = static_cast<float>(x[r * d + i]); s += f * f; }
    const float k = 1.f / std::sqrt(s / static_cast<float>(d) + eps);
    for (int64_t i = 0; i < d; ++i)
      out[r * d + i] = static_cast<T>(static_cast<float>(x[r * d + i]) * k * static_cast<float>(w[i]));
  }
}

void pay(Job& j) {
  switch (j.dtype) {
    case at::kFloat:
      rows(reinterpret_cast<float*>(j.work), static_cast<const float*>(j.x), static_cast<const float*>(j.w),
           j.n, j.d, j.eps);
      break;
    case at::kDouble:
      rows(reinterpret_cast<double*>(j.work), static_cast<const double*>(j.x), static_cast<const double*>(j.w),
           j.n, j.d, j.eps);
      break;
    case at::kBFloat16:
      rows(reinterpret_cast<at::BFloat16*>(j.work), static_cast<const at::BFloat16*>(j.x),
           static_cast<const at::BFloat16*>(j.w), j.n, j.d, j.eps);
      break;
    case at::kHalf:
      rows(reinterpret_cast<at::Half*>(j.work), static_cast<const at::Half*>(j.x),
           static_cast<const at::Half*>(j.w), j.n, j.d, j.eps);
      break;
    default:
      break;
  }
}

void on_touch(int sig, siginfo_t* info, void* uctx) {
  char* addr = static_cast<char*>(info->si_addr);
  for (Job& j : jobs) {
    const int s = j.state.load();
    if ((s == kOwed || s == kWorking) && addr >= j.view && addr < j.view + j.bytes) {
      int owed = kOwed;
      if (j.state.compare_exchange_strong(owed, kWorking)) {
        pay(j);
        mprotect(j.view, j.bytes, PROT_READ | PROT_WRITE);
        j.state.store(kDone);
      } else {
        while (j.state.load() != kDone) {
        }
      }
      return;  // the touching instruction runs again, now on written memory
    }
  }
  // Not ours: whoever handled SIGSEGV before us decides.
  if (before_us.sa_flags & SA_SIGINFO) {
    before_us.sa_sigaction(sig, info, uctx);
  } else if (before_us.sa_handler != SIG_DFL && before_us.sa_handler != SIG_IGN) {
    before_us.sa_handler(sig);
  } else {
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

void install() {
  struct sigaction sa {};
  sa.sa_sigaction = on_touch;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &before_us);
}

void release(int slot) {  // the output was freed: keep the mapping for the next call of its size
  Job& j = jobs[slot];
  j.keep_x = at::Tensor();
  j.keep_w = at::Tensor();
  j.state.store(kFree);
}

// A free slot whose pages are mapped (closed) at `bytes`, or -1.
int take_slot(size_t bytes) {
  int slot = -1;
  for (int pass = 0; pass < 2 && slot < 0; ++pass) {  // a mapping of this size first, then any
    for (int i = 0; i < kJobs && slot < 0; ++i) {
      int f = kFree;
      if ((pass == 1 || jobs[i].bytes == bytes) && jobs[i].state.load() == kFree &&
          jobs[i].state.compare_exchange_strong(f, kWorking))
        slot = i;
    }
  }
  if (slot < 0) return -1;
  Job& j = jobs[slot];
  if (j.bytes == bytes) {
    mprotect(j.view, bytes, PROT_NONE);  // reused: closed again
    return slot;
  }
  if (j.bytes) {
    munmap(j.view, j.bytes);
    munmap(j.work, j.bytes);
    j.bytes = 0;
  }
  const int fd = memfd_create("rms", MFD_CLOEXEC);
  if (fd >= 0 && ftruncate(fd, static_cast<off_t>(bytes)) == 0) {
    void* view = mmap(nullptr, bytes, PROT_NONE, MAP_SHARED, fd, 0);
    void* work = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (view != MAP_FAILED && work != MAP_FAILED) {
      j.view = static_cast<char*>(view);
      j.work = static_cast<char*>(work);
      j.bytes = bytes;
    }
  }
  if (fd >= 0) close(fd);
  if (j.bytes != bytes) {
    j.state.store(kFree);
    return -1;
  }
  return slot;
}

}  // namespace

at::Tensor rms_norm_cpu(const at::Tensor& input, const at::Tensor& weight, double eps) {
  std::call_once(installed, install);
  at::Tensor x = input.contiguous(), w = weight.contiguous();
  const int64_t d = x.numel() ? x.size(-1) : 0;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t bytes = ((x.numel() * x.element_size() + page - 1) / page) * page;
  const int slot = bytes ? take_slot(bytes) : -1;
  if (slot < 0) {  // nothing to map (or no slot): pay now
    at::Tensor out = at::empty_like(x);
    Job now;
    now.work = static_cast<char*>(out.data_ptr());
    now.x = x.data_ptr(); now.w = w.data_ptr(); now.n = d ? x.numel() / d : 0; now.d = d;
    now.eps = static_cast<float>(eps); now.dtype = x.scalar_type();
    pay(now);
    return out;
  }
  Job& j = jobs[slot];
  j.x = x.data_ptr(); j.w = w.data_ptr();
  j.n = x.numel() / d; j.d = d; j.eps = static_cast<float>(eps); j.dtype = x.scalar_type();
  j.keep_x = x; j.keep_w = w;
  j.state.store(kOwed);
  return at::from_blob(j.view, x.sizes(), [slot](void*) { release(slot); }, x.options());
}
