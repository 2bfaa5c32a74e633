/*
 * Optional C speedups for wsio's WebSocket hot path.
 *
 * apply_mask(data, mask) -> bytes
 *     XOR a payload with a 4-byte masking key repeated (RFC 6455 section 5.3),
 *     eight bytes at a time.
 *
 * The pure-Python fallbacks live in wsio/websocket/frames.py and give
 * identical results.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *
apply_mask(PyObject *self, PyObject *args)
{
    Py_buffer data, mask;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "y*y*:apply_mask", &data, &mask)) {
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must be 4 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }
    {
        const unsigned char *src = (const unsigned char *)data.buf;
        const unsigned char *key = (const unsigned char *)mask.buf;
        unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(result);
        Py_ssize_t n = data.len;
        Py_ssize_t i = 0;
        uint64_t key64;
        unsigned char key8[8];

        memcpy(key8, key, 4);
        memcpy(key8 + 4, key, 4);
        memcpy(&key64, key8, 8);
        for (; i + 8 <= n; i += 8) {
            uint64_t word;
            memcpy(&word, src + i, 8);
            word ^= key64;
            memcpy(dst + i, &word, 8);
        }
        for (; i < n; i++) {
            dst[i] = src[i] ^ key[i & 3];
        }
    }
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return result;
}

/*
 * mask_join(chunks, mask) -> bytes
 *     The concatenation of the buffers in the list *chunks*, unmasked with
 *     *mask* as one payload (the mask's phase runs on across chunks): one
 *     allocation and one pass for a frame that arrived in many reads.
 */
static PyObject *
mask_join(PyObject *self, PyObject *args)
{
    PyObject *chunks;
    Py_buffer mask;
    PyObject *result = NULL;
    Py_ssize_t count, i, total = 0, pos = 0;
    unsigned char key[4];

    if (!PyArg_ParseTuple(args, "O!y*:mask_join", &PyList_Type, &chunks, &mask)) {
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must be 4 bytes");
        PyBuffer_Release(&mask);
        return NULL;
    }
    memcpy(key, mask.buf, 4);
    PyBuffer_Release(&mask);
    count = PyList_GET_SIZE(chunks);
    for (i = 0; i < count; i++) {
        Py_buffer view;
        if (PyObject_GetBuffer(PyList_GET_ITEM(chunks, i), &view, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        total += view.len;
        PyBuffer_Release(&view);
    }
    result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL) {
        return NULL;
    }
    {
        unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(result);
        for (i = 0; i < count; i++) {
            Py_buffer view;
            const unsigned char *src;
            Py_ssize_t n, j = 0;
            unsigned char key8[8];
            uint64_t key64;
            int phase = (int)(pos & 3);

            if (PyObject_GetBuffer(PyList_GET_ITEM(chunks, i), &view, PyBUF_SIMPLE) < 0) {
                Py_DECREF(result);
                return NULL;
            }
            src = (const unsigned char *)view.buf;
            n = view.len;
            if (pos + n > total) {  /* a chunk grew meanwhile */
                PyBuffer_Release(&view);
                Py_DECREF(result);
                PyErr_SetString(PyExc_ValueError, "chunks changed size");
                return NULL;
            }
            for (int k = 0; k < 8; k++) {
                key8[k] = key[(phase + k) & 3];
            }
            memcpy(&key64, key8, 8);
            for (; j + 8 <= n; j += 8) {
                uint64_t word;
                memcpy(&word, src + j, 8);
                word ^= key64;
                memcpy(dst + pos + j, &word, 8);
            }
            for (; j < n; j++) {
                dst[pos + j] = src[j] ^ key[(phase + j) & 3];
            }
            pos += n;
            PyBuffer_Release(&view);
        }
    }
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", apply_mask, METH_VARARGS,
     "apply_mask(data, mask) -> bytes: XOR data with the 4-byte mask repeated."},
    {"mask_join", mask_join, METH_VARARGS,
     "mask_join(chunks, mask) -> bytes: join a list of buffers and unmask them as one payload."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "wsio._speedups",
    "Optional C speedups for wsio.",
    -1,
    speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}
