// LruList: an intrusive doubly linked list over the ids [0, n): O(1) push at
// the back (most recently used), removal of any member, and pop at the front
// (least recently used). The free cached blocks of the GPU pool and the slots
// of the host tier are kept in one each.
//
// Threading: engine thread only.
#pragma once

#include <cstdint>
#include <vector>

#include "base/check.h"

namespace kr {

class LruList {
 public:
  explicit LruList(int32_t n) : prev_(static_cast<size_t>(n) + 1, -1), next_(static_cast<size_t>(n) + 1, -1), head_(n) {
    prev_[static_cast<size_t>(head_)] = next_[static_cast<size_t>(head_)] = head_;
  }

  int32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool contains(int32_t id) const { return prev_[idx(id)] >= 0; }
  // The least recently used member; the list must not be empty.
  int32_t front() const {
    KR_CHECK(size_ > 0);
    return next_[static_cast<size_t>(head_)];
  }
  // The member after `id` towards the most recently used, or -1 at the end.
  int32_t after(int32_t id) const {
    const int32_t n = next_[idx(id)];
    return n == head_ ? -1 : n;
  }
  void push_back(int32_t id) {
    KR_CHECK(!contains(id));
    const int32_t last = prev_[static_cast<size_t>(head_)];
    prev_[idx(id)] = last;
    next_[idx(id)] = head_;
    next_[static_cast<size_t>(last)] = id;
    prev_[static_cast<size_t>(head_)] = id;
    ++size_;
  }
  void remove(int32_t id) {
    KR_CHECK(contains(id));
    const int32_t p = prev_[idx(id)], n = next_[idx(id)];
    next_[static_cast<size_t>(p)] = n;
    prev_[static_cast<size_t>(n)] = p;
    prev_[idx(id)] = next_[idx(id)] = -1;
    --size_;
  }
  int32_t pop_front() {
    const int32_t id = front();
    remove(id);
    return id;
  }

 private:
  size_t idx(int32_t id) const {
    KR_CHECK(id >= 0 && id < head_);
    return static_cast<size_t>(id);
  }
  std::vector<int32_t> prev_, next_;  // [n + 1]: the last entry is the sentinel; -1: not a member
  int32_t head_;                      // the sentinel's id (n)
  int32_t size_ = 0;
};

}  // namespace kr
