/* report.h — internals of the report writers: the viewer page, compiled in from src/report/viewer.html
 * (CMakeLists.txt generates the byte array). */
#ifndef HEED_REPORT_REPORT_H
#define HEED_REPORT_REPORT_H

#include <stddef.h>

/* src/report/viewer.html as bytes [heed_viewer_page_len] (not NUL-terminated). */
extern const unsigned char heed_viewer_page[];
extern const size_t heed_viewer_page_len;

#endif
