#include "dist/comm.h"

#include <zlib.h>

#include <algorithm>
#include <vector>

namespace vitqk::dist {

namespace {

class SingleProcess final : public Comm {
 public:
  int size() const override { return 1; }
  int rank() const override { return 0; }
  void allreduce_sum(float*, size_t) const override {}
  void allreduce_sum(double*, size_t) const override {}
  void broadcast(void*, size_t, int) const override {}
  void barrier() const override {}
};

}  // namespace

const Comm& single_process() {
  static const SingleProcess single;
  return single;
}

void agree(const Comm& c, const std::string& error) {
  if (c.size() == 1) {
    if (!error.empty()) throw AgreedError(error);
    return;
  }
  std::vector<double> failed(c.size(), 0.0);
  failed[c.rank()] = error.empty() ? 0.0 : 1.0;
  c.allreduce_sum(failed.data(), failed.size());
  const auto first = std::find(failed.begin(), failed.end(), 1.0);
  if (first == failed.end()) return;
  const int root = int(first - failed.begin());
  const bool everywhere = std::count(failed.begin(), failed.end(), 1.0) == c.size();
  std::string message = error;
  uint64_t length = message.size();
  c.broadcast(&length, sizeof length, root);
  message.resize(length);
  c.broadcast(message.data(), length, root);
  throw AgreedError(everywhere ? message : cat("rank ", root, ": ", message));
}

nlohmann::json broadcast_json(const Comm& c, const nlohmann::json& value, int root) {
  if (c.size() == 1) return value;
  std::string text = c.rank() == root ? value.dump() : std::string();
  uint64_t length = text.size();
  c.broadcast(&length, sizeof length, root);
  text.resize(length);
  c.broadcast(text.data(), length, root);
  return nlohmann::json::parse(text);
}

void require_same(const Comm& c, const nlohmann::json& mine, const std::string& advice) {
  if (c.size() == 1) return;
  const nlohmann::json first = broadcast_json(c, mine);
  std::string error;
  for (const auto& [key, value] : first.items()) {
    const nlohmann::json own = mine.value(key, nlohmann::json());
    if (own != value) {
      error = cat(key, " is ", own.dump(), ", rank 0's is ", value.dump(), ": ", advice);
      break;
    }
  }
  agree(c, error);
}

uint32_t checksum(const void* data, size_t bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(data);
  while (bytes > 0) {  // crc32 takes a uInt length
    const uInt n = uInt(std::min<size_t>(bytes, 1u << 30));
    crc = crc32(crc, p, n);
    p += n, bytes -= n;
  }
  return uint32_t(crc);
}

}  // namespace vitqk::dist
