/* commands.h — the heed CLI's subcommands; each lives in its own tools/<name>.c file. */
#ifndef HEED_TOOLS_COMMANDS_H
#define HEED_TOOLS_COMMANDS_H

int cmd_bench(int argc, char **argv); /* heed bench attn ... (tools/bench_attn.c) */
int cmd_tokenize(int argc, char **argv); /* heed tokenize / heed detokenize (tools/tokenize.c) */
int cmd_logits(int argc, char **argv); /* heed logits: one forward pass to safetensors (tools/logits.c) */
int cmd_run(int argc, char **argv); /* heed run: generate text (tools/run.c) */
int cmd_ppl(int argc, char **argv); /* heed ppl: sliding-window perplexity (tools/ppl.c) */
int cmd_embed(int argc, char **argv); /* heed embed: pooled sentence embedding (tools/embed.c) */
int cmd_train_tokenizer(int argc, char **argv); /* heed train-tokenizer: byte-level BPE (tools/train_tokenizer.c) */
int cmd_inspect(int argc, char **argv); /* heed inspect: the attention viewer page (tools/inspect.c) */
int cmd_heads(int argc, char **argv); /* heed heads: rank attention heads by a score (tools/heads.c) */
int cmd_needle(int argc, char **argv); /* heed needle: the needle-in-a-haystack grid (tools/needle.c) */
int cmd_patch(int argc, char **argv); /* heed patch: activation patching of head outputs (tools/patch.c) */
int cmd_lens(int argc, char **argv); /* heed lens: the logit lens per layer (tools/lens.c) */
int cmd_probe(int argc, char **argv); /* heed probe: linear probes per layer, Concept Depth (tools/probe.c) */
int cmd_act_search(int argc, char **argv); /* heed act-search: ACT head search on labelled items (tools/act_search.c) */
int cmd_train(int argc, char **argv); /* heed train: train a model (tools/train.c) */

#endif
