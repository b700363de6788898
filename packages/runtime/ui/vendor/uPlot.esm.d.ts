// Types only, for checking the UI (tsconfig.json here): the admin listener serves
// vendor/uPlot.esm.js from the uplot package in node_modules (src/observe/ui-assets.ts).
export { default } from "uplot";
