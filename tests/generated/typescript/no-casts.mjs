// Fails if journey.ts holds a cast, a non-null assertion, `any` or a ts-ignore/ts-expect-error:
// tsc --strict cannot forbid those, and with them the journey would prove nothing about the
// generated types. Run by scripts/generated-clients with the pinned TypeScript compiler.
// Usage: node no-casts.mjs FILE
import { readFileSync } from "node:fs";
import ts from "typescript";

const file = process.argv[2];
const text = readFileSync(file, "utf8");
const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
const found = [];
const forbidden = {
  [ts.SyntaxKind.AsExpression]: "a cast (`as`)",
  [ts.SyntaxKind.TypeAssertionExpression]: "a cast (`<T>`)",
  [ts.SyntaxKind.NonNullExpression]: "a non-null assertion (`!`)",
  [ts.SyntaxKind.AnyKeyword]: "`any`",
};
function visit(node) {
  const what = forbidden[node.kind];
  if (what !== undefined) {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart());
    found.push(`${file}:${line + 1}: ${what}`);
  }
  ts.forEachChild(node, visit);
}
visit(source);
text.split("\n").forEach((line, index) => {
  if (/@ts-(ignore|expect-error|nocheck)/.test(line)) {
    found.push(`${file}:${index + 1}: a ts-ignore`);
  }
});
if (found.length > 0) {
  console.error(found.join("\n"));
  process.exit(1);
}
