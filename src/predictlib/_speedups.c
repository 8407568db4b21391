/* predictlib._speedups: the record reader's inner loop, lists of numbers read and object
 * columns' texts looked up, in C (optional).
 *
 * predictlib/_reader.py reads plain dicts into the lean graph's float64 input; this is
 * the same reading, value for value, without CPython's per-value overhead. It takes
 * exactly what the Python reader takes at first sight (exact dicts; numbers that are
 * exactly float, int or None; texts found in the vocabulary, None and NaN) and stops
 * at the first record holding anything else: the Python reader then takes that record
 * (it remembers unseen texts, converts datetimes and leaves the rest to the checked
 * path, which names the problem). No exception escapes but a caller's error (bad
 * arguments, a buffer too small); any exception a record raises is cleared and the
 * record is left to the Python reader, which raises it again where it must.
 *
 * read_numbers reads a list (or tuple) of numbers that are exactly float, int or None
 * into float64, as predictlib/_objects.py's plain_numbers does with numpy, and declines
 * anything else, which numpy's conversion or the per-value path then takes.
 *
 * text_ids looks the cells of a numpy object column up in a table of the vocabulary
 * (text_table), for predictlib/_objects.py: exact str by their characters, None and NaN
 * as missing; anything else is left to the Python paths. The lookups run with the GIL
 * released, on objects it holds a reference to.
 *
 * Built by hatch_build.py when a C compiler is found; predictlib runs without it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* _native.py checks this before using the module (a stale build is ignored) */
#define SPEEDUPS_VERSION 3

typedef struct {
    PyObject *numeric; /* tuple of column names, the numbers' order in a row */
    PyObject *texts;   /* tuple of column names, the texts' order after the numbers */
    PyObject *index;   /* dict: text (or None) -> its index packed as 8 bytes */
    PyObject *missing; /* 8 bytes: the missing-value sentinel's index (for NaN) */
} Layout;

/* NaN as Python's math.nan holds it (Py_NAN may be the sign-set NaN of inf * 0) */
static const uint64_t NAN_BITS = 0x7ff8000000000000ULL;

/* 1 when a function is given its number of arguments; else 0, with the TypeError set */
static int
takes(const char *function, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs == expected)
        return 1;
    PyErr_Format(PyExc_TypeError, "%s takes %zd arguments (%zd given)", function, expected, nargs);
    return 0;
}

/* One record into one row (dst, 8 bytes a value). 1: written; 0: the Python reader must
 * take it (the row is then partly written, and no exception is set). */
static int
fill_row(PyObject *record, const Layout *layout, char *dst)
{
    if (!PyDict_CheckExact(record))
        return 0;
    Py_ssize_t n_numeric = PyTuple_GET_SIZE(layout->numeric);
    for (Py_ssize_t j = 0; j < n_numeric; j++) {
        PyObject *value = PyDict_GetItemWithError(record, PyTuple_GET_ITEM(layout->numeric, j));
        double number;
        if (value == NULL)
            goto not_taken; /* absent (or a key's == raised) */
        if (PyFloat_CheckExact(value))
            number = PyFloat_AS_DOUBLE(value);
        else if (PyLong_CheckExact(value)) {
            number = PyLong_AsDouble(value); /* rounds as float(int) and struct's "d" */
            if (number == -1.0 && PyErr_Occurred())
                goto not_taken; /* beyond float64 */
        }
        else if (value == Py_None)
            memcpy(&number, &NAN_BITS, 8);
        else
            goto not_taken; /* bool, numpy scalar, Decimal, text... */
        memcpy(dst + 8 * j, &number, 8);
    }
    Py_ssize_t n_texts = PyTuple_GET_SIZE(layout->texts);
    for (Py_ssize_t j = 0; j < n_texts; j++) {
        PyObject *value = PyDict_GetItemWithError(record, PyTuple_GET_ITEM(layout->texts, j));
        if (value == NULL)
            goto not_taken;
        Py_INCREF(value); /* the lookup may run a value's __eq__ */
        PyObject *id = PyDict_GetItemWithError(layout->index, value); /* the index only grows */
        if (id == NULL && !PyErr_Occurred() && PyFloat_CheckExact(value)
            && Py_IS_NAN(PyFloat_AS_DOUBLE(value)))
            id = layout->missing;
        int ok = id != NULL && PyBytes_CheckExact(id) && PyBytes_GET_SIZE(id) == 8;
        if (ok)
            memcpy(dst + 8 * (n_numeric + j), PyBytes_AS_STRING(id), 8);
        Py_DECREF(value);
        if (!ok)
            goto not_taken; /* unseen text, unhashable value, anything else */
    }
    return 1;
not_taken:
    PyErr_Clear();
    return 0;
}

PyDoc_STRVAR(read_records_doc,
"read_records(records, numeric, texts, index, missing, out, row) -> int\n\n"
"Writes records[0], records[1]... into rows row, row + 1... of out (float64, C order,\n"
"len(numeric) + len(texts) columns: the numbers, then the texts' packed indices) and\n"
"returns how many it wrote, stopping at the first record the Python reader must take.");

static PyObject *
read_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!takes("read_records", nargs, 7))
        return NULL;
    Layout layout = {args[1], args[2], args[3], args[4]};
    if (!PyTuple_CheckExact(layout.numeric) || !PyTuple_CheckExact(layout.texts)
        || !PyDict_CheckExact(layout.index) || !PyBytes_CheckExact(layout.missing)
        || PyBytes_GET_SIZE(layout.missing) != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "read_records: numeric and texts must be tuples, index a dict, missing 8 bytes");
        return NULL;
    }
    Py_ssize_t row = PyLong_AsSsize_t(args[6]);
    if (row == -1 && PyErr_Occurred())
        return NULL;
    PyObject *records = PySequence_Fast(args[0], "read_records: records must be a sequence");
    if (records == NULL)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[5], &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        Py_DECREF(records);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(records);
    Py_ssize_t row_bytes = 8 * (PyTuple_GET_SIZE(layout.numeric) + PyTuple_GET_SIZE(layout.texts));
    if (row < 0 || (row_bytes > 0 && view.len / row_bytes < row + n)) {
        PyBuffer_Release(&view);
        Py_DECREF(records);
        PyErr_Format(PyExc_ValueError, "read_records: out holds %zd bytes, fewer than rows %zd to %zd need",
                     view.len, row, row + n);
        return NULL;
    }
    char *base = (char *)view.buf + row * row_bytes;
    Py_ssize_t written = 0;
    /* a value's __eq__ may change the list: its length and items are read afresh */
    while (written < n && written < PySequence_Fast_GET_SIZE(records)) {
        PyObject *record = PySequence_Fast_GET_ITEM(records, written);
        Py_INCREF(record);
        int taken = fill_row(record, &layout, base + written * row_bytes);
        Py_DECREF(record);
        if (!taken)
            break;
        written++;
    }
    PyBuffer_Release(&view);
    Py_DECREF(records);
    return PyLong_FromSsize_t(written);
}

PyDoc_STRVAR(read_numbers_doc,
"read_numbers(values, out) -> int\n\n"
"Writes values (a list or tuple) into out (float64, C order, at least len(values)):\n"
"float as it is, int as float(int) rounds it, None as NaN. Returns len(values), or -1\n"
"(out then partly written) at the first value that is anything else (a bool, a float\n"
"or int subclass, a numpy scalar, an int beyond float64, text...).");

static PyObject *
read_numbers(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!takes("read_numbers", nargs, 2))
        return NULL;
    PyObject *values = args[0];
    if (!PyList_CheckExact(values) && !PyTuple_CheckExact(values)) {
        PyErr_SetString(PyExc_TypeError, "read_numbers: values must be a list or a tuple");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    /* no Python code runs below (exact types only): the list stays as it is */
    Py_ssize_t n = PySequence_Fast_GET_SIZE(values);
    PyObject **items = PySequence_Fast_ITEMS(values);
    if (view.len / 8 < n) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "read_numbers: out holds %zd bytes, fewer than %zd values need",
                     view.len, n);
        return NULL;
    }
    char *out = (char *)view.buf;
    Py_ssize_t read = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = items[i];
        double number;
        if (PyFloat_CheckExact(value))
            number = PyFloat_AS_DOUBLE(value);
        else if (PyLong_CheckExact(value)) {
            number = PyLong_AsDouble(value); /* rounds as float(int) */
            if (number == -1.0 && PyErr_Occurred()) {
                PyErr_Clear(); /* beyond float64 */
                read = -1;
                break;
            }
        }
        else if (value == Py_None)
            memcpy(&number, &NAN_BITS, 8);
        else {
            read = -1;
            break;
        }
        memcpy(out + 8 * i, &number, 8);
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(read);
}

/* ---- text_ids: an object column's texts looked up in the vocabulary ---- */

/* A text's characters as CPython holds them: one canonical kind (1, 2 or 4 bytes a
 * character, the smallest that fits) and its bytes, so equal texts have equal bytes. */
typedef struct {
    Py_ssize_t size; /* bytes */
    const char *data;
    int kind;
} Chars;

/* 1 and the characters' place for an exact, ready str; 0 for anything else. The
 * characters are not read: has_surrogate tells the texts that are not valid Unicode. */
static int
str_chars(PyObject *value, Chars *chars)
{
    if (!PyUnicode_CheckExact(value))
        return 0;
#if PY_VERSION_HEX < 0x030C0000
    if (!PyUnicode_IS_READY(value))
        return 0;
#endif
    chars->kind = (int)PyUnicode_KIND(value);
    chars->size = PyUnicode_GET_LENGTH(value) * chars->kind;
    chars->data = (const char *)PyUnicode_DATA(value);
    return 1;
}

/* 1 when the text holds a lone surrogate (it cannot be encoded: the checked path
 * refuses it) */
static int
has_surrogate(const Chars *chars)
{
    if (chars->kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *c = (const Py_UCS2 *)chars->data;
        for (Py_ssize_t k = 0; k < chars->size / 2; k++)
            if (c[k] >= 0xD800 && c[k] <= 0xDFFF)
                return 1;
    }
    else if (chars->kind == PyUnicode_4BYTE_KIND) {
        const Py_UCS4 *c = (const Py_UCS4 *)chars->data;
        for (Py_ssize_t k = 0; k < chars->size / 4; k++)
            if (c[k] >= 0xD800 && c[k] <= 0xDFFF)
                return 1;
    }
    return 0;
}

/* mixes 8 bytes into h (one multiply: texts are short) */
static inline uint64_t
mix(uint64_t h, uint64_t word)
{
    h = (h ^ word) * 0xff51afd7ed558ccdULL;
    return h ^ (h >> 32);
}

/* the characters' hash, 8 bytes at a time; the kind and size in the seed */
static uint64_t
chars_hash(const Chars *chars)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)chars->size << 2) ^ (uint64_t)chars->kind;
    const char *p = chars->data;
    Py_ssize_t left = chars->size;
    for (; left >= 8; p += 8, left -= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        h = mix(h, word);
    }
    if (left > 0) {
        uint64_t word = 0;
        for (Py_ssize_t k = 0; k < left; k++)
            word |= (uint64_t)(unsigned char)p[k] << (8 * k);
        h = mix(h, word);
    }
    return h ^ (h >> 29);
}

typedef struct {
    uint64_t hash;
    Chars chars; /* data NULL: an empty slot */
    int64_t id;
} Slot;

typedef struct {
    size_t mask;     /* slots - 1, a power of two less one */
    Slot *slots;
    char *pool;      /* the texts' bytes */
    int64_t missing; /* the missing-value sentinel's id (None, NaN) */
    int64_t unseen;  /* the id of a text outside the vocabulary */
} TextTable;

static const char TEXT_TABLE[] = "predictlib._speedups.TextTable";

static void
free_table(TextTable *table)
{
    if (table != NULL) {
        PyMem_RawFree(table->slots);
        PyMem_RawFree(table->pool);
        PyMem_RawFree(table);
    }
}

static void
text_table_destructor(PyObject *capsule)
{
    free_table((TextTable *)PyCapsule_GetPointer(capsule, TEXT_TABLE));
}

/* texts are short: a loop beats a call of memcmp */
static inline int
same_bytes(const char *a, const char *b, Py_ssize_t size)
{
    for (Py_ssize_t k = 0; k < size; k++)
        if (a[k] != b[k])
            return 0;
    return 1;
}

static Slot *
find(const TextTable *table, const Chars *chars, uint64_t hash)
{
    for (size_t at = hash & table->mask;; at = (at + 1) & table->mask) {
        Slot *slot = &table->slots[at];
        if (slot->chars.data == NULL)
            return slot;
        if (slot->hash == hash && slot->chars.kind == chars->kind && slot->chars.size == chars->size
            && same_bytes(slot->chars.data, chars->data, chars->size))
            return slot;
    }
}

PyDoc_STRVAR(text_table_doc,
"text_table(vocabulary, missing) -> table\n\n"
"The table text_ids looks texts up in (a capsule): vocabulary[k] (a list of distinct\n"
"str) has id k, None and NaN the id missing (the missing-value sentinel's index), any\n"
"other text len(vocabulary). A text of the vocabulary that is not valid Unicode is\n"
"left out (no cell can match it: text_ids declines such cells).");

static PyObject *
text_table(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "text_table takes a list of str and the missing value's id");
        return NULL;
    }
    PyObject *vocabulary = args[0];
    Py_ssize_t n = PyList_GET_SIZE(vocabulary);
    Py_ssize_t missing = PyLong_AsSsize_t(args[1]);
    if (missing == -1 && PyErr_Occurred())
        return NULL;
    if (missing < 0 || missing >= n) {
        PyErr_SetString(PyExc_ValueError, "text_table: missing must index the vocabulary");
        return NULL;
    }
    size_t slots = 8;
    while (slots < 2 * (size_t)n)
        slots *= 2;
    size_t pool_size = 1;
    for (Py_ssize_t k = 0; k < n; k++) {
        Chars chars;
        if (!str_chars(PyList_GET_ITEM(vocabulary, k), &chars)) {
            PyErr_SetString(PyExc_TypeError, "text_table: the vocabulary must hold str");
            return NULL;
        }
        pool_size += (size_t)chars.size;
    }
    TextTable *table = PyMem_RawCalloc(1, sizeof(TextTable));
    if (table != NULL) {
        table->slots = PyMem_RawCalloc(slots, sizeof(Slot));
        table->pool = PyMem_RawMalloc(pool_size);
    }
    if (table == NULL || table->slots == NULL || table->pool == NULL) {
        free_table(table);
        return PyErr_NoMemory();
    }
    table->mask = slots - 1;
    table->missing = missing;
    table->unseen = n;
    char *next = table->pool;
    for (Py_ssize_t k = 0; k < n; k++) {
        Chars chars;
        str_chars(PyList_GET_ITEM(vocabulary, k), &chars);
        if (has_surrogate(&chars))
            continue;
        memcpy(next, chars.data, (size_t)chars.size);
        chars.data = next; /* the table's own copy: the list may change after this */
        next += chars.size;
        uint64_t hash = chars_hash(&chars);
        Slot *slot = find(table, &chars, hash);
        if (slot->chars.data == NULL) { /* the first of equal texts keeps its id */
            slot->hash = hash;
            slot->chars = chars;
            slot->id = k;
        }
    }
    PyObject *capsule = PyCapsule_New(table, TEXT_TABLE, text_table_destructor);
    if (capsule == NULL)
        free_table(table);
    return capsule;
}

/* how many cells ahead the objects are fetched into the caches while their references
 * are taken */
#define PREFETCH 16

static inline void
prefetch(const PyObject *value)
{
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(value, 1); /* for writing: its reference count */
#else
    (void)value;
#endif
}

/* cell_id's answer for the missing-value sentinel's own text (the checked path names it) */
#define SENTINEL_TEXT (-3)

/* The id of one cell, read without the GIL: the caller holds a reference to value, and
 * only what cannot change in a live object is read (its type; a str's characters, a
 * float's value). -1 for anything but an exact str of valid Unicode, None and NaN. */
static inline int64_t
cell_id(const TextTable *table, PyObject *value)
{
    Chars chars;
    if (value == Py_None)
        return table->missing;
    if (PyFloat_CheckExact(value))
        return Py_IS_NAN(PyFloat_AS_DOUBLE(value)) ? table->missing : -1;
    if (!str_chars(value, &chars) || has_surrogate(&chars))
        return -1;
    const Slot *slot = find(table, &chars, chars_hash(&chars));
    if (slot->chars.data == NULL)
        return table->unseen;
    return slot->id == table->missing ? SENTINEL_TEXT : slot->id;
}

PyDoc_STRVAR(text_ids_doc,
"text_ids(table, values, out, scratch) -> int\n\n"
"Writes the id of each cell of values (a 1-D C-contiguous numpy object array) into out\n"
"(a 1-D int64 array, strided or not, of at least len(values)): a text's id in the\n"
"table, the missing id for None and NaN, the unseen id for any other text of valid\n"
"Unicode, and -1 for anything else (a str subclass, a number, another missing marker, a\n"
"lone surrogate). Returns how many cells are -1, or -1 (out then partly written) when a\n"
"cell is the missing-value sentinel's own text. The cells are taken a block at a time,\n"
"as many as scratch (a writable buffer, 8 bytes a cell) holds: a reference to each\n"
"object is taken, then the block is looked up with the GIL released (other threads\n"
"run; no object can go away), then the references are dropped.");

static PyObject *
text_ids(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!takes("text_ids", nargs, 4))
        return NULL;
    const TextTable *table = PyCapsule_GetPointer(args[0], TEXT_TABLE);
    if (table == NULL)
        return NULL;
    Py_buffer cells_view, out_view, scratch_view;
    if (PyObject_GetBuffer(args[1], &cells_view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (cells_view.ndim != 1 || cells_view.format == NULL || strcmp(cells_view.format, "O") != 0
        || cells_view.itemsize != sizeof(PyObject *)) {
        PyBuffer_Release(&cells_view);
        PyErr_SetString(PyExc_TypeError, "text_ids: values must be a 1-D C-contiguous object array");
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &out_view, PyBUF_WRITABLE | PyBUF_STRIDES | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&cells_view);
        return NULL;
    }
    if (PyObject_GetBuffer(args[3], &scratch_view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&out_view);
        PyBuffer_Release(&cells_view);
        return NULL;
    }
    /* the exported buffer keeps values from being resized while the GIL is released */
    PyObject *const *cells = (PyObject *const *)cells_view.buf;
    Py_ssize_t n = cells_view.shape[0];
    Py_ssize_t block = scratch_view.len / (Py_ssize_t)sizeof(PyObject *);
    Py_ssize_t left = 0;
    if (out_view.ndim != 1 || out_view.shape[0] < n || out_view.itemsize != 8 || out_view.format == NULL
        || (strcmp(out_view.format, "l") != 0 && strcmp(out_view.format, "q") != 0)) {
        PyErr_Format(PyExc_ValueError, "text_ids: out must be a 1-D int64 array of at least %zd cells", n);
        left = -2;
    }
    else if (block < 1) {
        PyErr_SetString(PyExc_ValueError, "text_ids: scratch must hold at least one pointer");
        left = -2;
    }
    char *out = (char *)out_view.buf; /* a column of a matrix, say: strided */
    Py_ssize_t stride = left < 0 ? 0 : out_view.strides[0];
    PyObject **held = (PyObject **)scratch_view.buf;
    for (Py_ssize_t start = 0; start < n && left >= 0; start += block) {
        Py_ssize_t size = start + block < n ? block : n - start;
        for (Py_ssize_t k = 0; k < size; k++) {
            if (k + PREFETCH < size && cells[start + k + PREFETCH] != NULL)
                prefetch(cells[start + k + PREFETCH]);
            held[k] = cells[start + k];
            Py_XINCREF(held[k]);
        }
        Py_ssize_t declined = 0;
        int sentinel = 0;
        /* the next block's objects are fetched into the caches meanwhile, without the
         * GIL (a prefetch reads nothing: a pointer gone stale costs nothing), so that
         * taking their references, with the GIL, finds them there */
        PyObject *const *next = cells + start + size;
        Py_ssize_t next_size = n - start - size < block ? n - start - size : block;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = 0; k < size; k++) {
            if (k < next_size)
                prefetch(next[k]);
            int64_t id = held[k] == NULL ? -1 : cell_id(table, held[k]);
            if (id == SENTINEL_TEXT) {
                sentinel = 1;
                break;
            }
            declined += id < 0;
            *(int64_t *)(out + (start + k) * stride) = id;
        }
        Py_END_ALLOW_THREADS
        for (Py_ssize_t k = 0; k < size; k++)
            Py_XDECREF(held[k]);
        left = sentinel ? -1 : left + declined;
    }
    PyBuffer_Release(&scratch_view);
    PyBuffer_Release(&out_view);
    PyBuffer_Release(&cells_view);
    return left == -2 ? NULL : PyLong_FromSsize_t(left);
}

static PyMethodDef methods[] = {
    {"read_records", (PyCFunction)(void (*)(void))read_records, METH_FASTCALL, read_records_doc},
    {"read_numbers", (PyCFunction)(void (*)(void))read_numbers, METH_FASTCALL, read_numbers_doc},
    {"text_table", (PyCFunction)(void (*)(void))text_table, METH_FASTCALL, text_table_doc},
    {"text_ids", (PyCFunction)(void (*)(void))text_ids, METH_FASTCALL, text_ids_doc},
    {NULL, NULL, 0, NULL},
};

static int
exec_module(PyObject *module)
{
    return PyModule_AddIntConstant(module, "VERSION", SPEEDUPS_VERSION);
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "predictlib._speedups",
    .m_doc = "The record reader's inner loop, lists of numbers read and object columns' texts looked up, in C "
             "(see predictlib/_native.py).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module_def);
}
