build-tsan/obj/src/net/rate.o: src/net/rate.c src/net/rate.h \
 src/util/xalloc.h
src/net/rate.h:
src/util/xalloc.h:
