#!/usr/bin/env node
// A long-lived snarkjs prover (Groth16 or PLONK): kalypso.provers.snarkjs starts one and
// reuses it, so no proof pays node's start-up, snarkjs' loading or the curve's set-up again.
//
// Protocol: one JSON object a line each way.
//   stdin   {"id": <any>, "wasm": "<path>", "zkey": "<path>", "input": {<signal>: <value>},
//            "protocol": "groth16" (default) | "plonk"}
//        or {"id": <any>, "op": "public", "wasm": "<path>", "n_public": <n>, "input": {...}}
//           (a preflight: the public signals of the witness, no proof)
//        or {"id": <any>, "op": "verify", "protocol": ..., "vkey": {<verification key>},
//            "proof": {<proof.json>}, "publicSignals": [<decimal>...]}
//   stdout  {"id": <id>, "proof": <snarkjs proof.json>, "publicSignals": [<decimal>...]}
//        or {"id": <id>, "publicSignals": [<decimal>...]}   (for "public")
//        or {"id": <id>, "valid": true | false}             (for "verify")
//        or {"id": <id>, "error": "<message>", "kind": "witness" | "prover"}
// "witness": no witness exists for the input (an assert failed, an input is missing,
// extra or not a number) — the inputs are invalid, not the prover. "prover": anything
// else (unreadable artifacts, a zkey for another circuit, a malformed request).
// Requests are handled one at a time in arrival order (snarkjs already uses every core
// for one proof). Stdout carries nothing but these lines: console output (circom's
// runtime logs asserts with console.log) goes to stderr. The worker exits when stdin
// closes, after answering what it has read.
"use strict";

const fs = require("fs");
const path = require("path");
const readline = require("readline");
const util = require("util");

// Before loading snarkjs: its dependencies may log while loading.
for (const method of ["log", "info", "debug", "warn", "error", "trace"]) {
    console[method] = (...args) => process.stderr.write(util.format(...args) + "\n");
}

function loadSnarkjs() {
    const dirs = [];
    if (process.env.KALYPSO_NODE_MODULES) dirs.push(process.env.KALYPSO_NODE_MODULES);
    // src/kalypso/provers/ -> the repository root's node_modules
    dirs.push(path.resolve(__dirname, "..", "..", "..", "node_modules"));
    dirs.push(path.resolve(process.cwd(), "node_modules"));
    for (const dir of dirs) {
        const candidate = path.join(dir, "snarkjs");
        if (fs.existsSync(candidate)) return require(candidate);
    }
    return require("snarkjs"); // node's own resolution (NODE_PATH, global installs)
}

let snarkjs;
try {
    snarkjs = loadSnarkjs();
} catch (err) {
    process.stderr.write(
        "snarkjs not found: run `npm install` in the kalypso repository or set " +
            "KALYPSO_NODE_MODULES to a node_modules folder that holds snarkjs\n" +
            String(err && err.stack ? err.stack : err) + "\n",
    );
    process.exit(3);
}

// Artifacts read once and kept in memory (snarkjs reads a Uint8Array like a file);
// re-read when the file on disk changes.
const artifacts = new Map();

function artifact(file) {
    const stat = fs.statSync(file);
    const cached = artifacts.get(file);
    if (cached && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) {
        return cached.data;
    }
    const data = new Uint8Array(fs.readFileSync(file));
    artifacts.set(file, { mtimeMs: stat.mtimeMs, size: stat.size, data });
    return data;
}

function message(err) {
    const text = err && err.message ? err.message : String(err);
    return text.trim();
}

// groth16.fullProve is wtns.calculate then groth16.prove; calling the two steps
// ourselves tells a witness failure (invalid inputs) from a prover failure without
// parsing error messages.
async function prove(request) {
    const { id } = request;
    if (typeof request.wasm !== "string" || typeof request.zkey !== "string") {
        return { id, error: "a request needs wasm and zkey paths", kind: "prover" };
    }
    if (request.input === null || typeof request.input !== "object" || Array.isArray(request.input)) {
        return { id, error: "input must be a JSON object of signal values", kind: "witness" };
    }
    const scheme = protocolOf(request);
    if (!scheme) return { id, error: "protocol must be groth16 or plonk", kind: "prover" };
    const { wtns, files, failure } = await witnessOf(request, ["wasm", "zkey"]);
    if (failure) return failure;
    try {
        const { proof, publicSignals } = await scheme.prove(files.zkey, wtns);
        return { id, proof, publicSignals };
    } catch (err) {
        return { id, error: message(err), kind: "prover" };
    }
}

// Reads the artifacts `names` of a request and computes the witness of its input:
// { wtns, files }, or { failure: <reply> } ("prover" for unreadable files, "witness"
// when no witness exists for the input).
async function witnessOf(request, names) {
    const { id } = request;
    const files = {};
    try {
        for (const name of names) files[name] = artifact(request[name]);
    } catch (err) {
        return { failure: { id, error: `cannot read circuit artifacts: ${message(err)}`, kind: "prover" } };
    }
    const wtns = { type: "mem" };
    try {
        await snarkjs.wtns.calculate(request.input, files.wasm, wtns);
    } catch (err) {
        return { failure: { id, error: message(err), kind: "witness" } };
    }
    return { wtns, files };
}

// The preflight of a request: the public signals a witness of `input` gives (outputs
// first, then public inputs, as in a proof), or the witness error. No proving key needed.
async function publicSignals(request) {
    const { id } = request;
    if (typeof request.wasm !== "string" || !Number.isInteger(request.n_public)) {
        return { id, error: "a public-signals request needs wasm and n_public", kind: "prover" };
    }
    const { wtns, failure } = await witnessOf(request, ["wasm"]);
    if (failure) return failure;
    const witness = await snarkjs.wtns.exportJson(wtns);
    return { id, publicSignals: witness.slice(1, 1 + request.n_public).map(String) };
}

function protocolOf(request) {
    const name = request.protocol === undefined ? "groth16" : request.protocol;
    return name === "groth16" || name === "plonk" ? snarkjs[name] : null;
}

// A proof checked against a verification key: {valid}. A proof that does not even parse
// is invalid, not an error of the worker.
async function verify(request) {
    const { id } = request;
    const scheme = protocolOf(request);
    if (!scheme) return { id, error: "protocol must be groth16 or plonk", kind: "prover" };
    const { vkey, proof, publicSignals } = request;
    if (!vkey || typeof vkey !== "object" || !proof || typeof proof !== "object" || !Array.isArray(publicSignals)) {
        return { id, error: "a verify request needs vkey, proof and publicSignals", kind: "prover" };
    }
    try {
        return { id, valid: (await scheme.verify(vkey, publicSignals, proof)) === true };
    } catch (err) {
        return { id, valid: false };
    }
}

function handle(request) {
    if (request.op === "public") return publicSignals(request);
    if (request.op === "verify") return verify(request);
    return prove(request);
}

function reply(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

let queue = Promise.resolve();
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });

lines.on("line", (line) => {
    if (!line.trim()) return;
    let request;
    try {
        request = JSON.parse(line);
    } catch (err) {
        reply({ id: null, error: `not a JSON line: ${message(err)}`, kind: "prover" });
        return;
    }
    if (request === null || typeof request !== "object") {
        reply({ id: null, error: "a request is a JSON object", kind: "prover" });
        return;
    }
    queue = queue
        .then(() => handle(request))
        .catch((err) => ({ id: request.id, error: message(err), kind: "prover" }))
        .then(reply);
});

// snarkjs' worker threads keep the event loop alive, so exit explicitly.
lines.on("close", () => {
    queue.then(() => process.exit(0));
});
