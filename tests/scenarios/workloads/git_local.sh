#!/bin/sh
# Benign: git init, commit, branch and clone of a local repository.
set -eu
export GIT_AUTHOR_NAME=dev GIT_AUTHOR_EMAIL=dev@example.com
export GIT_COMMITTER_NAME=dev GIT_COMMITTER_EMAIL=dev@example.com
export GIT_CONFIG_NOSYSTEM=1
git init -q -b main origin
cd origin
printf 'print("hi")\n' > app.py
git add app.py
git commit -q -m "first"
git checkout -q -b feature
printf 'x = 1\n' >> app.py
git commit -q -am "second"
git checkout -q main
git merge -q --no-edit feature
cd ..
git clone -q origin clone
git clone -q --no-local origin clone2
git -C clone log --oneline | wc -l
git -C clone2 status --short
