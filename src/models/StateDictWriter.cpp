// writeStateDict: the bytes Python's torch.save(OrderedDict) writes, without Python.
//
// Why not torch::pickle_save: it tags typed containers with
// torch.jit._pickle.restore_type_tag, a global that torch.load's weights_only unpickler (the
// default since PyTorch 2.6) refuses. torch.save's own layout uses only globals that unpickler
// allows: collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.<T>Storage.
//
// Layout (zip, PyTorchStreamWriter): data.pkl (pickle protocol 2), data/<k> (raw little-endian
// storage bytes of tensor k), byteorder ("little"), version (written by the stream writer).
// data.pkl is
//   OrderedDict([(name, _rebuild_tensor_v2(persistent_load(('storage', torch.FloatStorage, 'k',
//                 'cpu', numel)), 0, size, stride, False, OrderedDict())), ...])
#include <cstring>
#include <map>
#include <stdexcept>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include "src/models/StateDict.h"

namespace slidetrain {
namespace {

/// The few pickle opcodes a state_dict needs (pickle protocol 2, as torch.save writes).
class PickleOut {
 public:
  void proto() { raw("\x80\x02", 2); }
  void stop() { op('.'); }
  void mark() { op('('); }
  void emptyTuple() { op(')'); }
  void tuple() { op('t'); }
  void reduce() { op('R'); }
  void setItems() { op('u'); }
  void persistentId() { op('Q'); }
  void boolean(bool v) { op(v ? '\x88' : '\x89'); }
  void global(const std::string& module, const std::string& name) {
    op('c');
    raw(module.data(), module.size());
    op('\n');
    raw(name.data(), name.size());
    op('\n');
  }
  void str(const std::string& s) {
    op('X');  // BINUNICODE: 4-byte little-endian length, UTF-8 bytes
    le(static_cast<uint64_t>(s.size()), 4);
    raw(s.data(), s.size());
  }
  void integer(int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');  // BININT: 4-byte signed little-endian
      le(static_cast<uint64_t>(static_cast<uint32_t>(static_cast<int32_t>(v))), 4);
    } else {
      op('\x8a');  // LONG1: 8 bytes, two's complement little-endian
      op('\x08');
      le(static_cast<uint64_t>(v), 8);
    }
  }
  void intTuple(at::IntArrayRef xs) {
    mark();
    for (int64_t x : xs) integer(x);
    tuple();
  }
  const std::string& bytes() const { return out_; }

 private:
  void op(char c) { out_.push_back(c); }
  void raw(const char* p, size_t n) { out_.append(p, n); }
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  std::string out_;
};

std::string storageClass(at::ScalarType t) {
  static const std::map<at::ScalarType, std::string> names = {
      {at::kFloat, "FloatStorage"},   {at::kDouble, "DoubleStorage"}, {at::kHalf, "HalfStorage"},
      {at::kBFloat16, "BFloat16Storage"}, {at::kLong, "LongStorage"}, {at::kInt, "IntStorage"},
      {at::kShort, "ShortStorage"},   {at::kChar, "CharStorage"},     {at::kByte, "ByteStorage"},
      {at::kBool, "BoolStorage"}};
  auto it = names.find(t);
  if (it == names.end())
    throw std::runtime_error(std::string("writeStateDict: no torch storage class for dtype ") +
                             c10::toString(t));
  return it->second;
}

}  // namespace

std::vector<char> stateDictBytes(const std::vector<std::pair<std::string, at::Tensor>>& entries) {
  std::vector<char> file;
  caffe2::serialize::PyTorchStreamWriter zip([&file](const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    file.insert(file.end(), c, c + n);
    return n;
  });
  PickleOut pk;
  pk.proto();
  pk.global("collections", "OrderedDict");
  pk.emptyTuple();
  pk.reduce();
  pk.mark();
  std::vector<at::Tensor> storages;
  for (const auto& [name, tensor] : entries) {
    const at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    const std::string key = std::to_string(storages.size());
    pk.str(name);
    pk.global("torch._utils", "_rebuild_tensor_v2");
    pk.mark();
    {
      pk.mark();  // the persistent id of the storage
      pk.str("storage");
      pk.global("torch", storageClass(t.scalar_type()));
      pk.str(key);
      pk.str("cpu");
      pk.integer(t.numel());
      pk.tuple();
      pk.persistentId();
    }
    pk.integer(0);  // storage offset
    pk.intTuple(t.sizes());
    pk.intTuple(t.strides());
    pk.boolean(false);  // requires_grad
    pk.global("collections", "OrderedDict");  // backward hooks: empty
    pk.emptyTuple();
    pk.reduce();
    pk.tuple();
    pk.reduce();
    storages.push_back(t);
  }
  pk.setItems();
  pk.stop();
  zip.writeRecord("data.pkl", pk.bytes().data(), pk.bytes().size());
  zip.writeRecord("byteorder", "little", 6);  // x86/arm hosts: storages are little-endian
  for (size_t k = 0; k < storages.size(); ++k)
    zip.writeRecord("data/" + std::to_string(k), storages[k].data_ptr(), storages[k].nbytes());
  zip.writeEndOfFile();
  return file;
}

}  // namespace slidetrain
