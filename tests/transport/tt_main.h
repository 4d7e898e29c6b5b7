/* tt_main.h - the main() of a one-suite Check test program. */
#ifndef TT_MAIN_H
#define TT_MAIN_H
#include <check.h>
#include <stdlib.h>

#define TT_MAIN(make_suite)                                                                        \
    int main(void)                                                                                 \
    {                                                                                              \
        SRunner *sr = srunner_create(make_suite());                                                \
        srunner_run_all(sr, CK_NORMAL);                                                            \
        int failed = srunner_ntests_failed(sr);                                                    \
        srunner_free(sr);                                                                          \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                               \
    }
#endif
