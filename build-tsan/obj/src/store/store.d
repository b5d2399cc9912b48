build-tsan/obj/src/store/store.o: src/store/store.c src/store/store.h \
 src/util/log.h src/util/xalloc.h
src/store/store.h:
src/util/log.h:
src/util/xalloc.h:
