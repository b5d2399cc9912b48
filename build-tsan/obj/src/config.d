build-tsan/obj/src/config.o: src/config.c src/config.h src/util/log.h \
 src/util/xalloc.h
src/config.h:
src/util/log.h:
src/util/xalloc.h:
