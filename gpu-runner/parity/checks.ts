// The parity checks `gpu-runner/commands/sd15.ts parity <fixture-dir>` runs, in order.
//
// Adding a component (e.g. `unet`, `text_encoder`, `vae`, `lora`): export a `ParityCheck` (./check.ts) from the
// component's own module and append it to PARITY_CHECKS below. A check must
//   - say in `appliesTo` whether the folder holds its data (usually: its sub-folder exists), so one command serves
//     folders holding any subset of the components;
//   - discover its cases from the files (tensor names, config.json, metadata), never from a list of the dev set's
//     names: hidden fixture sets use other seeds, shapes, widths and step counts;
//   - yield one ParityResult per case (use `compare(...)` for tensors, `failure(...)` when a case throws) and never
//     throw itself.
import type { ParityCheck } from './check.ts';
import { loraParity } from './lora.ts';
import { schedulerParity } from './schedulers.ts';
import { textEncoderParity } from './text-encoder.ts';
import { tokenizerParity } from './tokenizer.ts';
import { unetParity } from './unet.ts';
import { vaeParity } from './vae.ts';

export const PARITY_CHECKS: ParityCheck[] = [tokenizerParity, schedulerParity, textEncoderParity, unetParity, vaeParity, loraParity];
