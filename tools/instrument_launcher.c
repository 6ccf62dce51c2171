/*
 * /opt/draios/bin/instrument: start the bundled Python through the bundled dynamic
 * loader, so that the target image needs neither Python nor glibc.
 *
 * Static, no libc beyond execv: it runs in scratch, distroless and musl images alike.
 * It sets no environment variable (the loader gets its library path as an argument and
 * Python runs isolated with -I), so the workload started by the agent sees exactly the
 * environment the container was given.
 *
 * Compiled by tools/build_bundle.py with LDSO (the loader's file name), PYTHON (the
 * interpreter's file name) and PREFIX (where the bundle is installed) defined.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PREFIX
#define PREFIX "/opt/draios"
#endif

static const char entry[] =
    "import sys\n"
    "from workload_agent.cli import instrument_main\n"
    "sys.exit(instrument_main())\n";

/* The bundle root: two levels above this executable, else the compiled-in prefix. */
static void bundle_root(char *out, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(self, '/');
            if (!slash || slash == self) { n = -1; break; }
            *slash = '\0';
        }
        if (n > 0 && strlen(self) < size) {
            strcpy(out, self);
            return;
        }
    }
    snprintf(out, size, "%s", PREFIX);
}

int main(int argc, char **argv)
{
    /* a root of at most half PATH_MAX leaves room for the file names below */
    char root[PATH_MAX / 2], ldso[PATH_MAX], lib[PATH_MAX], python[PATH_MAX];
    bundle_root(root, sizeof root);
    snprintf(ldso, sizeof ldso, "%s/lib/%s", root, LDSO);
    snprintf(lib, sizeof lib, "%s/lib", root);
    snprintf(python, sizeof python, "%s/bin/%s", root, PYTHON);

    char **args = calloc((size_t)argc + 9, sizeof *args);
    if (!args) { perror("instrument"); return 127; }
    int i = 0;
    args[i++] = ldso;
    args[i++] = "--library-path";
    args[i++] = lib;
    args[i++] = "--argv0";
    args[i++] = python;
    args[i++] = python;
    args[i++] = "-I";  /* ignore PYTHON* variables meant for the workload, and user site */
    args[i++] = "-c";
    args[i++] = (char *)entry;
    for (int a = 1; a < argc; a++)
        args[i++] = argv[a];
    args[i] = NULL;
    execv(ldso, args);
    fprintf(stderr, "instrument: cannot run %s: %s\n", ldso, strerror(errno));
    return 127;
}
