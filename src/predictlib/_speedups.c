/* predictlib._speedups: the record reader's inner loop, and lists of numbers read, in C
 * (optional).
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
 * Built by hatch_build.py when a C compiler is found; predictlib runs without it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* _native.py checks this before using the module (a stale build is ignored) */
#define SPEEDUPS_VERSION 2

typedef struct {
    PyObject *numeric; /* tuple of column names, the numbers' order in a row */
    PyObject *texts;   /* tuple of column names, the texts' order after the numbers */
    PyObject *index;   /* dict: text (or None) -> its index packed as 8 bytes */
    PyObject *missing; /* 8 bytes: the missing-value sentinel's index (for NaN) */
} Layout;

/* NaN as Python's math.nan holds it (Py_NAN may be the sign-set NaN of inf * 0) */
static const uint64_t NAN_BITS = 0x7ff8000000000000ULL;

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
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "read_records takes 7 arguments (%zd given)", nargs);
        return NULL;
    }
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
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "read_numbers takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
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

static PyMethodDef methods[] = {
    {"read_records", (PyCFunction)(void (*)(void))read_records, METH_FASTCALL, read_records_doc},
    {"read_numbers", (PyCFunction)(void (*)(void))read_numbers, METH_FASTCALL, read_numbers_doc},
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
    .m_doc = "The record reader's inner loop and lists of numbers read in C (see predictlib/_native.py).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module_def);
}
