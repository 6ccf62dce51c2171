#!/bin/sh
# Benign: a package-free build: compile and link a small C program and archive it.
set -eu
mkdir -p build
cat > build/hello.c <<'SRC'
#include <stdio.h>
int greet(const char *who) { return printf("hello %s\n", who); }
int main(void) { return greet("world") < 0; }
SRC
gcc -O2 -Wall -c build/hello.c -o build/hello.o
gcc -o build/hello build/hello.o
ar rcs build/libhello.a build/hello.o
ls -l build
