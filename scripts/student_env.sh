#!/usr/bin/env bash
# Build the students' environment (default .venv-student): what a student's laptop or a
# JupyterHub image installs. It holds gradekit (the kernel-side recorder), coursedata (the
# course's data), the notebooks' dependencies and JupyterLab with nbgrader's student
# extensions (Assignments, Validate, Submit), configured for the course's exchange folder;
# no reference, hidden check, grader or wrong-answer corpus, and no formgrader.
# Usage: scripts/student_env.sh [ENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-${STUDENT_VENV:-.venv-student}}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi
# A staging copy of exactly what students get: the package is built from it, so nothing
# else of the repository (solutions/, autograder/, tests/) can end up in the environment.
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp student/pyproject.toml "$STAGE/"
for package in gradekit coursedata; do
    mkdir "$STAGE/$package"
    cp "$package"/*.py "$STAGE/$package/"
done
echo "installing the students' side into $VENV (a few minutes the first time)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$STAGE" 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; }

# nbgrader's instructor tools stay on the instructor's side.
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"
jupyter server extension disable --sys-prefix nbgrader.server_extensions.formgrader >/dev/null 2>&1
for plugin in formgrader create-assignment; do
    jupyter labextension disable --level=sys_prefix "@jupyter/nbgrader:$plugin" >/dev/null 2>&1
done
mkdir -p "$VENV/etc/jupyter"
cp student/nbgrader_config.py "$VENV/etc/jupyter/nbgrader_config.py"
touch "$VENV/.installed"
echo "students' environment ready: $VENV (start JupyterLab with: make student-lab)"
