/* ringlm_cli.h - subcommands of the `ringlm` CLI that need no daemon. */
#ifndef RINGLM_CLI_H
#define RINGLM_CLI_H

/* argv[0] is "tokenize". Returns the process exit status. */
int rl_cli_tokenize(int argc, char **argv);

#endif
