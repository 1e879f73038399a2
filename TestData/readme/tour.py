# tour.py: a sentence through a small BERT, every layer's attention saved to tour.h5 (pip install torch transformers h5py)
import h5py
import torch
from transformers import AutoModel, AutoTokenizer

name = "sentence-transformers/all-MiniLM-L6-v2"                     # 6 layers, 12 heads, 90 MB
tokenizer = AutoTokenizer.from_pretrained(name)
model = AutoModel.from_pretrained(name, attn_implementation="eager")  # SDPA and flash kernels return no attention
inputs = tokenizer("The cat sat on the mat because it was tired.", return_tensors="pt")
with torch.no_grad():
    out = model(**inputs, output_attentions=True)

# out.attentions: one tensor per layer, shaped (batch, heads, queries, keys). One sentence: batch 1, dropped here;
# for a batch, keep the axis and pass --batch B (or --batch all) to attninspect.
attention = torch.stack(out.attentions)[:, 0]                        # (layers, heads, queries, keys)
with h5py.File("tour.h5", "w") as f:
    f["attentions"] = attention.float().numpy()
    f.create_dataset("tokens", data=tokenizer.convert_ids_to_tokens(inputs["input_ids"][0]),
                     dtype=h5py.string_dtype())
    f.attrs["model"] = name
    f.attrs["axes"] = "layer,head,query,key"                          # says what the 4 axes are (no batch)
