// What a page reports as broken, for the browser tests to assert empty: console errors and uncaught exceptions.
import type { Page } from 'playwright-core';

/** Appends the page's console errors (except those `expected` matches) and uncaught exceptions to `into`. */
export function collectPageErrors(page: Page, into: string[], expected?: RegExp): void {
  page.on('console', (message) => {
    if (message.type() === 'error' && !expected?.test(message.text())) into.push(message.text());
  });
  page.on('pageerror', (error) => into.push(error.message));
}
