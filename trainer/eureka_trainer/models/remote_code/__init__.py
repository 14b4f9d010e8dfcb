"""Remote-code model packages that `eureka tiny-model --layout remote-code` writes into a
model folder (next to a `config.json` whose `auto_map` names them), as a hub repository ships
its own modeling code. transformers loads them only with `trust_remote_code=True`.

- `internvl_chat`: the interface of OpenGVLab's original InternVL2.5 chat model
  (`InternVLChatConfig` / `InternVLChatModel`, InternViT + pixel-shuffle MLP + an InternLM2
  language model), written for Eureka from that interface; see its docstring.

These files are data for a model folder: nothing in the trainer imports them.
"""
