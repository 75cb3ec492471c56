// readStateDict: reads a state_dict written by Python's torch.save (zip format) or by
// exportStateDict, without Python.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <tuple>

#include <caffe2/serialize/inline_container.h>

#include "src/models/StateDict.h"

namespace fs = std::filesystem;

namespace slidetrain {

namespace {

// ---- A minimal unpickler for torch.save's zip format -------------------------------------------
// libtorch 1.13's torch::pickle_load rejects what Python's torch.save writes for a state_dict
// (collections.OrderedDict becomes None, SETITEM is unknown), so the few opcodes a state_dict
// uses are interpreted here. Tensors are _rebuild_tensor_v2(storage, offset, size, stride, ...)
// calls whose storage is a persistent id ('storage', torch.<T>Storage, key, location, numel)
// naming the record "data/<key>" of the zip (read with PyTorchStreamReader).

struct PyObj;
using Obj = std::shared_ptr<PyObj>;
struct PyObj {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Tensor, Other } kind = None;
  int64_t i = 0;
  double f = 0;
  std::string s;            ///< Str value; Global "module.name"
  std::vector<Obj> items;   ///< Tuple, List
  std::vector<std::pair<Obj, Obj>> dict;
  at::Tensor tensor;        ///< Tensor (also a storage: 1-D, whole)
  std::string kindName() const {
    static const char* n[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict",
                              "global", "tensor", "object"};
    return n[kind];
  }
};

Obj make(PyObj::Kind k) {
  auto o = std::make_shared<PyObj>();
  o->kind = k;
  return o;
}

c10::ScalarType storageDtype(const std::string& global) {
  static const std::map<std::string, c10::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},     {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},       {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},       {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},     {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},       {"torch.BoolStorage", at::kBool},
      {"torch.ComplexFloatStorage", at::kComplexFloat},
      {"torch.ComplexDoubleStorage", at::kComplexDouble}};
  auto it = types.find(global);
  if (it == types.end()) throw std::runtime_error("unsupported storage type " + global);
  return it->second;
}

class TorchZipUnpickler {
 public:
  explicit TorchZipUnpickler(const std::string& path) : zip_(path) {}

  Obj load() {
    if (!zip_.hasRecord("data.pkl")) throw std::runtime_error("no data.pkl record in the zip");
    std::tie(pklPtr_, size_) = zip_.getRecord("data.pkl");
    p_ = static_cast<const uint8_t*>(pklPtr_.get());
    pos_ = 0;
    return run();
  }

 private:
  uint8_t byte() {
    need(1);
    return p_[pos_++];
  }
  void need(size_t n) {
    if (pos_ + n > size_) throw std::runtime_error("data.pkl truncated");
  }
  uint64_t uintLE(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= uint64_t(p_[pos_ + k]) << (8 * k);
    pos_ += n;
    return v;
  }
  std::string bytes(size_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return s;
  }
  std::string line() {
    size_t e = pos_;
    while (e < size_ && p_[e] != '\n') ++e;
    if (e >= size_) throw std::runtime_error("data.pkl truncated");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), e - pos_);
    pos_ = e + 1;
    return s;
  }
  Obj pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      throw std::runtime_error("pickle stack underflow");
    Obj o = stack_.back();
    stack_.pop_back();
    return o;
  }
  std::vector<Obj> popToMark() {
    if (marks_.empty()) throw std::runtime_error("pickle MARK missing");
    std::vector<Obj> v(stack_.begin() + long(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return v;
  }
  Obj& top() {
    if (stack_.empty()) throw std::runtime_error("pickle stack underflow");
    return stack_.back();
  }
  void memoPut(size_t idx) {
    if (memo_.size() <= idx) memo_.resize(idx + 1);
    memo_[idx] = top();
  }
  Obj memoGet(size_t idx) {
    if (idx >= memo_.size() || !memo_[idx]) throw std::runtime_error("pickle memo miss");
    return memo_[idx];
  }
  static void setItems(Obj& d, const std::vector<Obj>& kv) {
    if (d->kind != PyObj::Dict) throw std::runtime_error("SETITEM on a " + d->kindName());
    for (size_t k = 0; k + 1 < kv.size(); k += 2) {
      bool replaced = false;
      for (auto& e : d->dict)
        if (e.first->kind == PyObj::Str && kv[k]->kind == PyObj::Str && e.first->s == kv[k]->s) {
          e.second = kv[k + 1];
          replaced = true;
        }
      if (!replaced) d->dict.emplace_back(kv[k], kv[k + 1]);
    }
  }
  static std::vector<int64_t> ints(const Obj& t) {
    std::vector<int64_t> v;
    for (const auto& e : t->items) {
      if (e->kind != PyObj::Int) throw std::runtime_error("expected a tuple of ints");
      v.push_back(e->i);
    }
    return v;
  }

  Obj storage(const Obj& pid) {
    if (pid->kind != PyObj::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage")
      throw std::runtime_error("unsupported persistent id in data.pkl");
    const std::string key = pid->items[2]->s;
    auto it = storages_.find(key);
    if (it != storages_.end()) return it->second;
    const c10::ScalarType dtype = storageDtype(pid->items[1]->s);
    const int64_t numel = pid->items[4]->i;
    const std::string record = "data/" + key;
    if (!zip_.hasRecord(record)) throw std::runtime_error("missing storage record " + record);
    auto [ptr, n] = zip_.getRecord(record);
    at::Tensor t = at::empty({numel}, at::TensorOptions().dtype(dtype));
    const size_t want = size_t(numel) * t.element_size();
    if (n < want)
      throw std::runtime_error("storage record " + record + " holds " + std::to_string(n) +
                               " bytes, expected " + std::to_string(want));
    if (want) std::memcpy(t.data_ptr(), ptr.get(), want);
    Obj o = make(PyObj::Tensor);
    o->tensor = t;
    storages_[key] = o;
    return o;
  }

  Obj reduce(const Obj& fn, const Obj& args) {
    const std::string& f = fn->kind == PyObj::Global ? fn->s : std::string();
    const auto& a = args->items;
    if (f == "collections.OrderedDict" || f == "builtins.dict") {
      Obj d = make(PyObj::Dict);
      if (!a.empty() && a[0]->kind == PyObj::List)
        for (const auto& pair : a[0]->items)
          if (pair->items.size() == 2) d->dict.emplace_back(pair->items[0], pair->items[1]);
      return d;
    }
    if ((f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") &&
        a.size() >= 4 && a[0]->kind == PyObj::Tensor) {
      Obj t = make(PyObj::Tensor);
      t->tensor = a[0]->tensor.as_strided(ints(a[2]), ints(a[3]), a[1]->i);
      return t;
    }
    if ((f == "torch._utils._rebuild_parameter" ||
         f == "torch._utils._rebuild_parameter_with_state" ||
         f == "torch.jit._pickle.restore_type_tag") &&
        !a.empty())
      return a[0];
    return make(PyObj::Other);  // anything else a state_dict does not need
  }

  Obj run() {
    for (;;) {
      const uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;               // PROTO
        case 0x95: uintLE(8); break;            // FRAME
        case '.': return pop();                 // STOP
        case '(': marks_.push_back(stack_.size()); break;
        case 'N': stack_.push_back(make(PyObj::None)); break;
        case 0x88: case 0x89: {                 // NEWTRUE, NEWFALSE
          Obj o = make(PyObj::Bool);
          o->i = op == 0x88;
          stack_.push_back(o);
          break;
        }
        case 'J': case 'K': case 'M': {         // BININT, BININT1, BININT2
          Obj o = make(PyObj::Int);
          o->i = op == 'J' ? int64_t(int32_t(uint32_t(uintLE(4)))) : int64_t(uintLE(op == 'K' ? 1 : 2));
          stack_.push_back(o);
          break;
        }
        case 0x8a: case 0x8b: {                 // LONG1, LONG4
          const size_t n = op == 0x8a ? byte() : size_t(uintLE(4));
          if (n > 8) throw std::runtime_error("integer too large in data.pkl");
          uint64_t v = n ? uintLE(n) : 0;
          if (n && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);  // sign-extend
          Obj o = make(PyObj::Int);
          o->i = int64_t(v);
          stack_.push_back(o);
          break;
        }
        case 'G': {                             // BINFLOAT, big-endian
          need(8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | p_[pos_ + size_t(k)];
          pos_ += 8;
          Obj o = make(PyObj::Float);
          std::memcpy(&o->f, &bits, 8);
          stack_.push_back(o);
          break;
        }
        case 'X': case 0x8c: case 0x8d: case 'T': case 'U': case 'B': case 'C': case 0x8e: {
          size_t n = (op == 0x8c || op == 'U' || op == 'C') ? byte()
                     : (op == 0x8d || op == 0x8e)          ? size_t(uintLE(8))
                                                           : size_t(uintLE(4));
          Obj o = make(PyObj::Str);
          o->s = bytes(n);
          stack_.push_back(o);
          break;
        }
        case 'c': {                             // GLOBAL
          Obj o = make(PyObj::Global);
          std::string module = line();
          o->s = module + "." + line();
          stack_.push_back(o);
          break;
        }
        case 0x93: {                            // STACK_GLOBAL
          Obj name = pop(), module = pop();
          Obj o = make(PyObj::Global);
          o->s = module->s + "." + name->s;
          stack_.push_back(o);
          break;
        }
        case 'q': memoPut(byte()); break;       // BINPUT
        case 'r': memoPut(size_t(uintLE(4))); break;
        case 0x94: memoPut(memo_.size()); break;  // MEMOIZE
        case 'h': stack_.push_back(memoGet(byte())); break;
        case 'j': stack_.push_back(memoGet(size_t(uintLE(4)))); break;
        case ')': stack_.push_back(make(PyObj::Tuple)); break;
        case ']': stack_.push_back(make(PyObj::List)); break;
        case '}': stack_.push_back(make(PyObj::Dict)); break;
        case 't': case 'l': {
          Obj o = make(op == 't' ? PyObj::Tuple : PyObj::List);
          o->items = popToMark();
          stack_.push_back(o);
          break;
        }
        case 0x85: case 0x86: case 0x87: {      // TUPLE1..3
          Obj o = make(PyObj::Tuple);
          o->items.resize(size_t(op - 0x84));
          for (size_t k = o->items.size(); k-- > 0;) o->items[k] = pop();
          stack_.push_back(o);
          break;
        }
        case 'a': {
          Obj v = pop();
          top()->items.push_back(v);
          break;
        }
        case 'e': {
          auto v = popToMark();
          auto& l = top()->items;
          l.insert(l.end(), v.begin(), v.end());
          break;
        }
        case 'd': {
          Obj o = make(PyObj::Dict);
          setItems(o, popToMark());
          stack_.push_back(o);
          break;
        }
        case 's': {
          Obj v = pop(), k = pop();
          setItems(top(), {k, v});
          break;
        }
        case 'u': {
          auto kv = popToMark();
          setItems(top(), kv);
          break;
        }
        case 'R': case 0x81: {                  // REDUCE, NEWOBJ
          Obj args = pop(), fn = pop();
          stack_.push_back(reduce(fn, args));
          break;
        }
        case 'b': pop(); break;                 // BUILD: state (OrderedDict _metadata) unused
        case 'Q': {                             // BINPERSID
          Obj pid = pop();
          stack_.push_back(storage(pid));
          break;
        }
        default: {
          char buf[64];
          std::snprintf(buf, sizeof buf, "unsupported pickle opcode 0x%02x at byte %zu", op, pos_ - 1);
          throw std::runtime_error(buf);
        }
      }
    }
  }

  caffe2::serialize::PyTorchStreamReader zip_;
  at::DataPtr pklPtr_;
  const uint8_t* p_ = nullptr;
  size_t size_ = 0, pos_ = 0;
  std::vector<Obj> stack_, memo_;
  std::vector<size_t> marks_;
  std::map<std::string, Obj> storages_;
};

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> readStateDict(const std::string& path) {
  if (!fs::exists(path)) throw std::runtime_error(path + ": state_dict file not found");
  {
    std::ifstream in(path, std::ios::binary);
    char magic[2] = {0, 0};
    in.read(magic, 2);
    if (!in || magic[0] != 'P' || magic[1] != 'K')
      throw std::runtime_error(
          path + ": not a zip-format PyTorch file (a legacy pre-1.6 torch.save file, or not "
                 "PyTorch at all); re-save it in Python with torch.save(torch.load(f), f)");
  }
  Obj root;
  try {
    TorchZipUnpickler reader(path);
    root = reader.load();
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": cannot read PyTorch file: " + e.what_without_backtrace());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": cannot read PyTorch file: " + e.what());
  }
  auto tensorsOf = [](const Obj& d) {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& [k, v] : d->dict)
      if (k->kind == PyObj::Str && v->kind == PyObj::Tensor) out.emplace_back(k->s, v->tensor);
    return out;
  };
  if (root->kind != PyObj::Dict)
    throw std::runtime_error(path + ": expected a dict of tensors (a state_dict), got a " +
                             root->kindName());
  auto out = tensorsOf(root);
  if (out.empty()) {
    for (const char* nested : {"state_dict", "model_state_dict", "model"})
      for (const auto& [k, v] : root->dict)
        if (k->kind == PyObj::Str && k->s == nested && v->kind == PyObj::Dict && out.empty())
          out = tensorsOf(v);
  }
  return out;
}

}  // namespace slidetrain
