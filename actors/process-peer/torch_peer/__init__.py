"""torch_peer: a small PyTorch vision-language model that joins a Panel-of-Peers panel as a process peer.

A CNN encoder (4x4 grid of image tokens) and a small pre-norm transformer decoder over a word
vocabulary: it answers tiny-world questions by sampling, judges answers by its own distribution
over five score tokens, and learns with SimPO (+NLL) on each iteration's preference pairs. It
speaks the process wire (docs/process-peer.md) on stdin/stdout; see README.md here.

Modules: vocab (token layout), png (PNG decoding with numpy + zlib), model (the network),
sampling (seeded per-candidate sampling), data (the `pop tiny-data` export), pretrain (the
recipe of the shipped weights), simpo_train (a trainer-contract run), bench (accuracy on a
benchmark file), peer (the wire).
"""
