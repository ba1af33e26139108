"""Tiny random Hugging Face PaliGemma / PaliGemma 2 models (the reference implementation) and the
same inputs laid out for HF and for vidistill's PaliGemma."""
import numpy as np

IMAGE, PATCH = 16, 4
NUM_IMAGE_TOKENS = (IMAGE // PATCH) ** 2
VOCAB = 120
IMAGE_TOKEN = VOCAB - 1
SEP = 7  # the prompt separator ("\n" in the real vocabulary)
BOS = 2


def text_config(kind, window=24):
  text = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_attention_heads=4,
              head_dim=8, model_type=kind)
  if kind == "gemma2":
    # Soft caps low enough to bend the logits; a window shorter than the sequences used.
    text.update(num_hidden_layers=4, num_key_value_heads=2, query_pre_attn_scalar=12,
                attn_logit_softcapping=5.0, final_logit_softcapping=30.0, sliding_window=window)
  else:
    text.update(num_hidden_layers=2, num_key_value_heads=1)
  return text


def hf_paligemma(kind, seed=0, window=24):
  """A random `PaliGemmaForConditionalGeneration` with norm scales and embeddings that matter."""
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  torch.manual_seed(seed)
  cfg = transformers.PaliGemmaConfig(
      vision_config=dict(model_type="siglip_vision_model", hidden_size=16, intermediate_size=24,
                         num_hidden_layers=2, num_attention_heads=2, patch_size=PATCH,
                         image_size=IMAGE, vision_use_head=False),
      text_config=text_config(kind, window), projection_dim=32, image_token_index=IMAGE_TOKEN,
      vocab_size=VOCAB)
  model = transformers.PaliGemmaForConditionalGeneration(cfg).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if "norm" in name:  # HF initialises them to 0 / 1: make them matter
        p.add_(0.3 * torch.randn_like(p))
      if "embed_tokens" in name:  # HF's 0.02 init would leave the logits near zero
        p.mul_(20.0)
  return model


def batch(seed=0):
  """Two examples: a short padded prompt and answer, and a long one (34 tokens in all, past the
  Gemma 2 window of 24; the prefix, 23 tokens, within it)."""
  rng = np.random.default_rng(seed)
  video = rng.integers(0, 256, (2, 1, IMAGE, IMAGE, 3)).astype(np.uint8)
  prompt = np.array([[10, 11, 12, 1, 0, 0], [20, 21, 22, 23, 24, 1]], np.int32)
  targets = np.zeros((2, 12), np.int32)
  targets[0, :5] = [30, 31, 32, 33, 1]
  targets[1] = list(range(40, 51)) + [1]
  return {"video": video, "prompt_tokens": prompt, "target_tokens": targets}


def hf_ids(prompt_row, answer=()):
  """HF's sequence: image tokens, BOS, prompt, separator (the prefix), then answer tokens."""
  ids = [int(t) for t in prompt_row if t not in (0, 1)]
  prefix = [IMAGE_TOKEN] * NUM_IMAGE_TOKENS + [BOS] + ids + [SEP]
  return prefix + list(answer), len(prefix)


def hf_pixels(video_row):
  import torch  # pylint: disable=import-outside-toplevel
  return torch.tensor(video_row[:, :, :, :].astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)


def hf_answer_logits(hf, batch_, b):
  """HF logits `[L, V]` predicting example b's answer tokens (teacher forced)."""
  import torch  # pylint: disable=import-outside-toplevel
  answer = [int(t) for t in batch_["target_tokens"][b] if t != 0]
  ids, p = hf_ids(batch_["prompt_tokens"][b], answer[:-1])
  types = [0] * p + [1] * (len(ids) - p)
  with torch.no_grad():
    out = hf(input_ids=torch.tensor([ids]), pixel_values=hf_pixels(batch_["video"][b]),
             token_type_ids=torch.tensor([types]),
             attention_mask=torch.ones(1, len(ids), dtype=torch.long))
  return out.logits[0, p - 1:].numpy()


def hf_greedy(hf, batch_, b, max_new_tokens):
  """HF `generate` (greedy) answer tokens for example b, EOS included if reached."""
  import torch  # pylint: disable=import-outside-toplevel
  ids, p = hf_ids(batch_["prompt_tokens"][b])
  with torch.no_grad():
    out = hf.generate(input_ids=torch.tensor([ids]), pixel_values=hf_pixels(batch_["video"][b]),
                      token_type_ids=torch.tensor([[0] * p]),
                      attention_mask=torch.ones(1, p, dtype=torch.long), do_sample=False,
                      max_new_tokens=max_new_tokens, eos_token_id=1, pad_token_id=0)
  return [int(t) for t in out[0, p:]]
