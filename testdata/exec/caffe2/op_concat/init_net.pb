
concat_init