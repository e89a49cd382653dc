/* heed.c — the heed command-line tool: global flags and the table of subcommands.
 * Each subcommand lives in its own file (tools/<name>.c) and gets argv from its own name on. */
#include "heed.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"bench", cmd_bench, "benchmarks: `heed bench attn|model|train [--json] [--quick]` (kernels, runtime, trainer)"},
    {"tokenize", cmd_tokenize, "`heed tokenize [-m MODEL] [--no-special] < text`: JSON array of ids"},
    {"detokenize", cmd_tokenize, "`heed detokenize [-m MODEL] --ids 1,2,3`: the text, exactly"},
    {"train-tokenizer", cmd_train_tokenizer, "`heed train-tokenizer -f CORPUS -o DIR [--vocab N]`: byte-level BPE"},
    {"logits", cmd_logits, "`heed logits [-m MODEL] --ids IDS -o OUT.safetensors [--attn] [--hidden]`: a forward pass"},
    {"run", cmd_run, "`heed run [-m MODEL] (-p TEXT | --ids IDS) [-n N] [--greedy] [--temp T ...]`: generate"},
    {"ppl", cmd_ppl, "`heed ppl [-m MODEL] (-f FILE | --ids IDS) [--ctx N] [--stride S]`: sliding-window perplexity"},
    {"embed", cmd_embed, "`heed embed [-m MODEL] (-p TEXT | --ids IDS) [--pool mean|cls|last|eos]`: embedding"},
    {"inspect", cmd_inspect, "`heed inspect [-m MODEL] (-p TEXT | --ids IDS) -o OUT.html`: attention viewer page"},
    {"train", cmd_train, "`heed train -o DIR (--text FILE --tokenizer DIR | --data F.tok | --task KIND)`: train"},
    {"heads", cmd_heads, "`heed heads [-m MODEL] --score sink|induction|... [--json]`: rank attention heads"},
    {"needle", cmd_needle, "`heed needle [-m MODEL] [--ctx-lens L,...] [--depths D,...] [--png F]`: needle grid"},
    {"patch", cmd_patch, "`heed patch [-m MODEL] --clean TEXT --corrupt TEXT --answer TOK --foil TOK`: patching"},
    {"lens", cmd_lens, "`heed lens [-m MODEL] (-p TEXT | --ids IDS) [--pos P] [--target TOK]`: logit lens"},
    {"probe", cmd_probe, "`heed probe [-m MODEL] --data FILE.jsonl [--pool last|mean]`: linear probes per layer"},
    {"act-search", cmd_act_search, "`heed act-search [-m MODEL] --data FILE.jsonl [--layers A-B]`: ACT head search"},
};

static void usage(FILE *f)
{
    fprintf(f, "heed %s — attention, in C\n\nusage: heed <command> [options]   (heed <command> --help)\n\n"
               "commands:\n", heed_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nglobal options:\n  --version  print the version\n  --help     this text\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("heed %s\n", heed_version());
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "heed: unknown command '%s' (see heed --help)\n", argv[1]);
    return 2;
}
