
reshape_init