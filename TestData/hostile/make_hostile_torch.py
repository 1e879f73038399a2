#!/usr/bin/env python3
"""Hostile and broken torch.save files: attninspect must refuse each with one line, run nothing and touch no file.
Run with torch (CPU) and numpy: python3 make_hostile_torch.py. The pickles that name other globals are written by
Python's own pickler into a torch.save-shaped zip (the folder, data.pkl, byteorder); none is ever loaded here.

  torch_posix_system.pt  data.pkl calls os.system("touch /tmp/attninspect-pwned-torch") (pickled as posix.system)
  torch_exec.pt          data.pkl calls exec(...) (pickled as __builtin__.exec by protocol 2)
  torch_build.pt         a tensor, then a BUILD opcode that would set an object's state
  torch_parameter.pt     an nn.Parameter (torch._utils._rebuild_parameter: not on the allow-list)
  torch_legacy.pt        torch.save(..., _use_new_zipfile_serialization=False): the pre-1.6 bare pickle
  torch_script.pt        torch.jit.save of a scripted module (a TorchScript archive: a program)
  torch_plain.pkl        pickle.dump of a dict: a bare Python pickle
  torch_cycle.pt         a list that contains itself
  torch_deep.pt          tuples nested 200 deep
  torch_memo_bomb.pt     60 tuples each naming the previous one twice (2^60 paths through 120 bytes of memo)
  torch_short_storage.pt a tensor whose storage record holds fewer bytes than its storage claims
  torch_past_storage.pt  a tensor view whose strides reach past the end of its storage
  torch_missing_record.pt a tensor whose storage record is not in the archive
  torch_negative_offset.pt a tensor at storage offset -4 (it would read the zip header before its record)
  torch_zero_axis.pt     shape (0, 2^48, 2^48): nothing to read, but the axes' product overflows
  torch_text_bomb.pt     one list of 5,000 strings named by 1,000 dict values (5 million strings to copy)
  torch_name_bomb.pt     one 70 KB dict key naming 1,000 tensors (70 MB of tensor names)
"""
import collections
import io
import os
import pickle
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def torch_zip(name, pickle_bytes, records=None):
    folder = name[:-3]
    with zipfile.ZipFile(os.path.join(HERE, name), "w", zipfile.ZIP_STORED) as z:
        z.writestr(folder + "/data.pkl", pickle_bytes)
        z.writestr(folder + "/byteorder", b"little")
        for key, data in (records or {}).items():
            z.writestr(folder + "/data/" + key, data)
        z.writestr(folder + "/version", b"3\n")
    print(name)


class Call:
    """Pickles as a call of `function` with `args`: what an attacker writes."""

    def __init__(self, function, args):
        self.function, self.args = function, args

    def __reduce__(self):
        return (self.function, self.args)


class Storage:
    def __init__(self, key, count):
        self.key, self.count = key, count


class Tensor:
    """Pickles as torch.save pickles a tensor, with any storage offset, size and stride."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.count)
        return None


def dumps(obj):
    out = io.BytesIO()
    TorchPickler(out, protocol=2).dump(obj)
    return out.getvalue()


floats = np.arange(16, dtype="<f4").tobytes()
torch_zip("torch_posix_system.pt", dumps({"attentions": Call(os.system, ("touch /tmp/attninspect-pwned-torch",))}))
torch_zip("torch_exec.pt", dumps(Call(exec, ("open('/tmp/attninspect-pwned-torch', 'w')",))))
build = dumps(Tensor(Storage("0", 16), 0, (4, 4), (4, 1)))
torch_zip("torch_build.pt", build[:-1] + b"}b.", {"0": floats})  # BUILD with an empty dict as state
out = io.BytesIO()
torch.save(torch.nn.Parameter(torch.ones(2, 2)), out)
with zipfile.ZipFile(out) as source, zipfile.ZipFile(os.path.join(HERE, "torch_parameter.pt"), "w") as target:
    for info in source.infolist():
        target.writestr(info.filename.replace("archive/", "torch_parameter/"), source.read(info.filename))
print("torch_parameter.pt")
torch.save({"attentions": torch.ones(1, 2, 3, 3)}, os.path.join(HERE, "torch_legacy.pt"),
           _use_new_zipfile_serialization=False)
print("torch_legacy.pt")


class Doubler(torch.nn.Module):
    def forward(self, x):
        return x * 2


torch.jit.save(torch.jit.script(Doubler()), os.path.join(HERE, "torch_script.pt"))
print("torch_script.pt")
with open(os.path.join(HERE, "torch_plain.pkl"), "wb") as f:
    pickle.dump({"attentions": [[0.5, 0.5], [0.5, 0.5]]}, f, protocol=2)
print("torch_plain.pkl")
cycle = []
cycle.append(cycle)
torch_zip("torch_cycle.pt", dumps({"attentions": cycle}))
deep = ()
for _ in range(200):
    deep = (deep,)
torch_zip("torch_deep.pt", dumps(deep))
bomb = (Tensor(Storage("0", 16), 0, (4, 4), (4, 1)),)
for _ in range(60):
    bomb = (bomb, bomb)
torch_zip("torch_memo_bomb.pt", dumps(bomb), {"0": floats})
torch_zip("torch_short_storage.pt", dumps(Tensor(Storage("0", 16), 0, (4, 4), (4, 1))), {"0": floats[:40]})
torch_zip("torch_past_storage.pt", dumps(Tensor(Storage("0", 16), 4, (4, 4), (4, 1))), {"0": floats})
torch_zip("torch_missing_record.pt", dumps(Tensor(Storage("0", 16), 0, (4, 4), (4, 1))))
torch_zip("torch_negative_offset.pt", dumps({"attentions": Tensor(Storage("0", 16), -4, (1, 1, 4, 4), (16, 16, 4, 1))}),
          {"0": floats})
torch_zip("torch_zero_axis.pt", dumps({"attentions": Tensor(Storage("0", 16), 0, (0, 2**48, 2**48), (0, 2**48, 1))}),
          {"0": floats})
words = [f"w{i}" for i in range(5000)]
torch_zip("torch_text_bomb.pt", dumps({f"tokens{i}": words for i in range(1000)}))
key = "k" * 70_000
one = Tensor(Storage("0", 16), 0, (4, 4), (4, 1))
torch_zip("torch_name_bomb.pt", dumps({f"{i}": {key: one} for i in range(1000)}), {"0": floats})
