// ES module entry: the CommonJS implementation re-exported, so `import` and
// `require` share one module instance (one loaded library, one set of
// scratch buffers).
import dbkv from './index.js';

export const { open, version, libraryFile, DbkvError, DB, ERROR_CODES } = dbkv;
export default dbkv;
