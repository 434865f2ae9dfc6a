// Validates custom resources against their CRDs' OpenAPI schemas, as shipped by the npm packages
// @kubernetes-models/cert-manager and @kubernetes-models/prometheus-operator (installed under .tools/ by
// scripts/install-test-deps.sh), independently of notarium's own code.
//
// Usage: node validate_crds.mjs NODE_MODULES_DIR OBJECTS.json
// OBJECTS.json is a JSON array of objects. Prints one line per object and exits 0 when all are valid; an
// object of a kind this script has no schema for, or an invalid one, is named and the exit code is 1.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, objectsFile] = process.argv.slice(2);
const models = {
  "cert-manager.io/v1": "@kubernetes-models/cert-manager/cert-manager.io/v1/index.js",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js",
};

let failed = false;
for (const object of JSON.parse(readFileSync(objectsFile, "utf8"))) {
  const name = `${object.apiVersion} ${object.kind} ${object.metadata?.name}`;
  const file = models[object.apiVersion];
  const group = file && (await import(pathToFileURL(join(modules, file)).href));
  const Model = group && group[object.kind];
  if (!Model) {
    console.log(`NO SCHEMA ${name}`);
    failed = true;
    continue;
  }
  try {
    new Model(object).validate();
    console.log(`VALID ${name}`);
  } catch (error) {
    console.log(`INVALID ${name}: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
