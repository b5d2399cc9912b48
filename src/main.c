/* main.c - argv -> cli_main; nothing else. */
#include "cli/cli.h"

int main(int argc, char **argv, char **envp)
{
    return cli_main(argc, argv, envp);
}
